/* A minimal unit-test harness for the C core: each test program includes
 * this once, calls CHECK* from test functions and ends main() with
 * check_summary(), which prints "N passed, N failed" and gives the exit code. */
#ifndef GENAUTH_CHECK_H
#define GENAUTH_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

/* Defined in a ThreadSanitizer build (gcc's or clang's), for the tests it
 * cannot run. */
#if defined(__SANITIZE_THREAD__)
#define GENAUTH_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GENAUTH_TEST_TSAN 1
#endif
#endif

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            check_passed++;                                                  \
        } else {                                                             \
            check_failed++;                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

#define CHECK_STR(got, want)                                                 \
    do {                                                                     \
        const char *g_ = (got), *w_ = (want);                                \
        if (g_ && w_ && strcmp(g_, w_) == 0) {                               \
            check_passed++;                                                  \
        } else {                                                             \
            check_failed++;                                                  \
            fprintf(stderr, "%s:%d: got  \"%s\"\n%*swant \"%s\"\n",          \
                    __FILE__, __LINE__, g_ ? g_ : "(null)",                  \
                    (int)strlen(__FILE__) + 8, "", w_ ? w_ : "(null)");      \
        }                                                                    \
    } while (0)

#define CHECK_MEM(got, got_len, want, want_len)                              \
    do {                                                                     \
        if ((got_len) == (want_len) && memcmp((got), (want), (got_len)) == 0) \
            check_passed++;                                                  \
        else {                                                               \
            check_failed++;                                                  \
            fprintf(stderr, "%s:%d: bytes differ (%zu vs %zu)\n", __FILE__,  \
                    __LINE__, (size_t)(got_len), (size_t)(want_len));        \
        }                                                                    \
    } while (0)

static inline int
check_summary(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif

/* The calling thread's stack bounds, for recursive walks (stack.h). */
#include "stack.h"

#include <pthread.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A main thread whose stack may grow to this much (RLIMIT_STACK) holds the
 * fixed depth limits' walks several times over: its bounds are not looked
 * up. */
#define GENAUTH_STACK_MAIN_ENOUGH (1024 * 1024)

typedef struct {
    uintptr_t low;   /* the lowest usable address (the guard page is below) */
    uintptr_t size;  /* 0: unknown */
    uintptr_t floor; /* low + GENAUTH_STACK_RESERVE */
    int looked_up;
} genauth_stack_bounds;

/* Per thread, so a thread's first walk looks its bounds up and the others
 * only read them. */
static _Thread_local genauth_stack_bounds genauth_stack_this_thread;

/* The floor for a walk at `at`: a walk on another stack (a coroutine
 * library's, a signal stack) is not measured against this one's bounds;
 * nor is any walk where they are unknown (size 0). */
static inline uintptr_t
genauth_stack_floor_at(const genauth_stack_bounds *b, uintptr_t at)
{
    return at - b->low < b->size ? b->floor : 0;
}

/* A thread's first walk: looks the bounds up, then answers as
 * genauth_stack_floor. Apart, so that the walks' path reads the
 * thread-local once and calls nothing else. */
__attribute__((noinline)) static uintptr_t
genauth_stack_look_up(genauth_stack_bounds *b, uintptr_t at)
{
    b->looked_up = 1;
    b->size = 0;
#ifdef __linux__ /* glibc and musl */
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    struct rlimit limit;

    /* For the main thread pthread_getattr_np reads the whole of
     * /proc/self/maps (hundreds of microseconds in a Python process, on its
     * first call): skipped when its stack may grow far enough anyway. */
    if (getpid() == (pid_t)syscall(SYS_gettid) &&
        getrlimit(RLIMIT_STACK, &limit) == 0 &&
        (limit.rlim_cur == RLIM_INFINITY ||
         limit.rlim_cur >= GENAUTH_STACK_MAIN_ENOUGH))
        return 0;
    /* Any other thread (glibc reads its descriptor), or a main thread
     * with a small stack limit. */
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &addr, &size) == 0 &&
            addr != NULL && size > GENAUTH_STACK_RESERVE) {
            b->low = (uintptr_t)addr;
            b->size = size;
            b->floor = b->low + GENAUTH_STACK_RESERVE;
        }
        pthread_attr_destroy(&attr);
    }
#endif
    return genauth_stack_floor_at(b, at);
}

uintptr_t
genauth_stack_floor(void)
{
    genauth_stack_bounds *b = &genauth_stack_this_thread;
    GENAUTH_STACK_HERE(at);

    if (!b->looked_up)
        return genauth_stack_look_up(b, at);
    return genauth_stack_floor_at(b, at);
}

uintptr_t
genauth_stack_floor_part(uintptr_t floor, unsigned parts)
{
    GENAUTH_STACK_HERE(at);

    if (floor != 0 && parts > 1 && at > floor)
        floor = at - (at - floor) / parts;
    return floor;
}

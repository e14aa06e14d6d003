/* How far a recursive walk may go down the stack of the thread it runs on.
 *
 * Every recursive walk of genauth-c (a payload's conversion, the JSON
 * writer, an answer's conversion to Python objects, the search of an
 * answer for a credential) stops with an error, rather than overflowing
 * the stack, on a thread whose stack is too small for the data: a caller's
 * thread started after threading.stack_size(65536) holds a few hundred
 * levels, not the 500 (payloads) or 1000 (answers) the fixed limits allow.
 * As in CPython 3.14's own recursion check, the bounds come from the
 * thread itself (pthread_getattr_np), found once per thread; a walk takes
 * its floor once, at its start, and pays one pointer compare per level:
 *
 *     uintptr_t floor = genauth_stack_floor();
 *     ...
 *     if (genauth_stack_short(floor))  // before each level down
 *         fail;
 *
 * Where the bounds are unknown (no pthread_getattr_np, or a walk running on
 * a stack other than its thread's own) the floor is 0: only the fixed depth
 * limits apply, as they always do. */
#ifndef GENAUTH_STACK_H
#define GENAUTH_STACK_H

#include <stdint.h>

/* What a walk leaves free below its deepest level: the work done there
 * (libc's printf and strtod, CPython's allocator and a garbage collection
 * it may start, with the finalizers that runs). */
#define GENAUTH_STACK_RESERVE (16 * 1024)

/* The lowest address the calling thread's walks may take a level at: the
 * thread's stack end plus GENAUTH_STACK_RESERVE; 0 when the bounds are
 * unknown. Cheap after the thread's first call (the bounds are cached in a
 * thread-local), but meant to be taken once per walk, not per level. */
uintptr_t genauth_stack_floor(void);

/* The floor, from `floor` (genauth_stack_floor()), for a walk whose output
 * a later walk, deeper in the call and in larger frames, walks again: it
 * keeps to 1/`parts` of the room the stack has left at the caller's frame,
 * and leaves the rest to that walk. 0 for a floor of 0. */
uintptr_t genauth_stack_floor_part(uintptr_t floor, unsigned parts);

/* Declares `uintptr_t name`, where the stack is at the caller's frame: a
 * local's address. Under AddressSanitizer a local may live on its heap
 * "fake stack" (detect_stack_use_after_return), so the frame's address is
 * taken instead, on the thread's stack either way. */
#if defined(__SANITIZE_ADDRESS__)
#define GENAUTH_STACK_FRAME_ADDRESS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GENAUTH_STACK_FRAME_ADDRESS 1
#endif
#endif
#ifdef GENAUTH_STACK_FRAME_ADDRESS
#define GENAUTH_STACK_HERE(name)                                             \
    uintptr_t name = (uintptr_t)__builtin_frame_address(0)
#else
#define GENAUTH_STACK_HERE(name)                                             \
    char name##_local;                                                       \
    uintptr_t name = (uintptr_t)&name##_local
#endif

/* Whether the stack at the caller's frame is at or below `floor`: no room
 * for another level. Always 0 for a floor of 0. */
static inline int
genauth_stack_short(uintptr_t floor)
{
    GENAUTH_STACK_HERE(at);
    return at < floor;
}

#endif

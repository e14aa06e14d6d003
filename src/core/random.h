/* Random bytes for signature nonces and retry jitter, from the kernel
 * (getentropy): no lock is taken. libcrypto's RAND_bytes takes its own
 * locks, and a process forked while another of its threads held one (a
 * thread making a call) would hang in the child at its first call. */
#ifndef GENAUTH_RANDOM_H
#define GENAUTH_RANDOM_H

#include <stddef.h>

/* Fills buf with n (at most 256) random bytes. 0, or -1 when the system
 * has none to give. */
int genauth_random_bytes(void *buf, size_t n);

#endif

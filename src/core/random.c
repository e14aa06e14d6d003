/* genauth_random_bytes (random.h). */
#include "random.h"

#include <sys/random.h>

int
genauth_random_bytes(void *buf, size_t n)
{
    /* getentropy blocks only until the kernel's pool is first seeded, and
     * fills up to 256 bytes whole or fails. */
    return n <= 256 && getentropy(buf, n) == 0 ? 0 : -1;
}

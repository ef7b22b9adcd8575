/*
 * runtime/base/sigpipe.c — see sigpipe.h.
 */
#include "sigpipe.h"

#include <signal.h>
#include <string.h>

int anvil_sigpipe_ignore(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) != 0)
        return -1;
    if (sa.sa_handler != SIG_DFL || (sa.sa_flags & SA_SIGINFO))
        return 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGPIPE, &sa, NULL) == 0 ? 0 : -1;
}

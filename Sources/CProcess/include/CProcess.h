// Process controls Swift cannot call directly (prctl is variadic in C).
#ifndef INKWELL_CPROCESS_H
#define INKWELL_CPROCESS_H

#ifdef __cplusplus
extern "C" {
#endif

// prctl(PR_SET_PDEATHSIG, signal): the kernel sends `signal` to this process when the thread that started it
// exits (for Inkwell's launcher, its main thread: the process). Returns 0, or -1 with errno set.
int cp_set_parent_death_signal(int signal);

#ifdef __cplusplus
}
#endif

#endif

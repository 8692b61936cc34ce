// The OpenMP wait policy libtorch's CPU thread pool runs under (CPUPacing.swift owns the thread count).
//
// libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, in its constructor; by default an idle pool thread
// spins ~300000 times before it sleeps. On a core that another process also wants, the spinning threads and
// the barriers waiting on a thread the scheduler has not run cost an order of magnitude. Setting the variable
// from the program is too late: libgomp's constructor runs before any code of the executable, and even the
// executable's .preinit_array (which runs first) cannot add to the environment, because libc's own
// initialisation resets `environ` to the kernel's array after it. So the .preinit_array entry below re-executes
// the program (/proc/self/exe, same arguments) with OMP_WAIT_POLICY=PASSIVE added, when the user set neither
// OMP_WAIT_POLICY nor GOMP_SPINCOUNT. It runs before any library's constructor (no thread, no state yet),
// after the loader mapped the libraries: it costs one more load, a few tens of milliseconds. The marker
// variable tells the new image that the policy is Inkwell's; its constructor below, which runs after libgomp
// has read the environment, removes both, so the processes Inkwell starts (ranks, tools) see the user's
// environment and choose for themselves. If the exec fails, the program goes on under libgomp's default.
// This must be linked into the executable (SwiftPM links the CTorch objects into every product).
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctorch.h"

namespace {

const char kPolicy[] = "OMP_WAIT_POLICY=PASSIVE";
const char kMarker[] = "INKWELL_CHOSE_OMP_WAIT_POLICY=1";

// 1: Inkwell chose PASSIVE; 0: the user's environment decides.
int chosen = 0;

bool has(char **envp, const char *name) {
  size_t length = strlen(name);
  for (char **e = envp; e != nullptr && *e != nullptr; ++e) {
    if (strncmp(*e, name, length) == 0 && (*e)[length] == '=') return true;
  }
  return false;
}

// Before libc and every library are initialised: only the loader's argv and envp, no getenv/setenv/malloc.
void choose_wait_policy(int, char **argv, char **envp) {
  if (has(envp, "INKWELL_CHOSE_OMP_WAIT_POLICY")) {
    chosen = has(envp, "OMP_WAIT_POLICY") ? 1 : 0;
    return;
  }
  if (argv == nullptr || envp == nullptr || has(envp, "OMP_WAIT_POLICY") || has(envp, "GOMP_SPINCOUNT")) return;
  size_t count = 0;
  while (envp[count] != nullptr) ++count;
  char **environment = static_cast<char **>(__builtin_alloca((count + 3) * sizeof(char *)));
  memcpy(environment, envp, count * sizeof(char *));
  environment[count] = const_cast<char *>(kPolicy);
  environment[count + 1] = const_cast<char *>(kMarker);
  environment[count + 2] = nullptr;
  execve("/proc/self/exe", argv, environment);
  // Only on failure: run on, under libgomp's default.
}

// With the executable's constructors, after every library's (libgomp's included).
__attribute__((constructor)) void forget_wait_policy() {
  if (getenv("INKWELL_CHOSE_OMP_WAIT_POLICY") == nullptr) return;
  unsetenv("INKWELL_CHOSE_OMP_WAIT_POLICY");
  if (chosen == 1) unsetenv("OMP_WAIT_POLICY");
}

}  // namespace

__attribute__((section(".preinit_array"), used)) static void (*const ct_preinit_wait_policy)(int, char **, char **) =
    choose_wait_policy;

extern "C" int32_t ct_openmp_wait_policy_chosen(void) { return chosen; }

/*
 * The probe of stalls.ts: `stall-probe <seconds>` spins on the clock for <seconds> and prints every
 * gap of at least 20 µs between two readings, in ms, as JSON: {"seconds":2,"gaps":[0.031,...]}.
 * A loop that allocates nothing and calls nothing but the clock has no stalls of its own: what it
 * finds is time its core was taken from it (interrupts, other tenants of the host, the hypervisor).
 * In C because the same loop in JavaScript finds more, 1.2 to 2 times the time lost in runs
 * alternated with this one (its own JIT compiles on the same core: one took 9 ms): a floor that
 * measured Node would not be the machine's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 2;
  size_t cap = 1 << 16, n = 0;
  double *gaps = malloc(cap * sizeof *gaps);
  if (gaps == NULL) return 1;
  double last = now_ms(), until = last + seconds * 1e3;
  for (;;) {
    double t = now_ms();
    if (t - last >= 0.02) {
      if (n == cap) {
        double *more = realloc(gaps, (cap *= 2) * sizeof *gaps);
        if (more == NULL) return 1;
        gaps = more;
      }
      gaps[n++] = t - last;
    }
    last = t;
    if (t >= until) break;
  }
  printf("{\"seconds\":%g,\"gaps\":[", seconds);
  for (size_t i = 0; i < n; i++) printf(i ? ",%.4f" : "%.4f", gaps[i]);
  printf("]}\n");
  return 0;
}

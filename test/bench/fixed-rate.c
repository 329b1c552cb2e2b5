/*
 * The fixed-rate load generator of fixed-rate.ts:
 *   fixed-rate <port> <rate> <seconds> <warmup-seconds> <connections> <request-file>
 * sends the request in <request-file> (raw HTTP/1.1, keep-alive) to 127.0.0.1:<port> at <rate>
 * requests per second, one request in flight per connection, and prints as JSON the latency of
 * every request due after the warm-up, counted from the moment it was DUE (a server or a
 * connection still busy delays the send, and that wait is counted: no coordinated omission):
 *   {"requests":n,"sent":n,"p50":µs,"p99":µs,"p999":µs,"max":µs,"statuses":{"200":n},"errors":0,
 *    "gaps":[ms,...]}
 * "gaps" are the generator's own stalls: every time its loop, which never sleeps, went 50 µs or
 * more between two readings of the clock (its core taken away; its own work per turn is a few µs).
 *
 * Why C: the JavaScript generator's own collections and compilations land in the latencies it
 * measures. On a quiet servers' core (floor p99 6–41 µs) it gave the bare node:http server p99s of
 * 0.56, 3.7 and 8.2 ms in three rounds: the tail was the generator's, not the server's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 16384

struct conn {
  int fd;
  int busy; /* a request in flight */
  double due;
  size_t len;
  char buf[BUF];
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "fixed-rate: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
  exit(1);
}

/* A growing array of doubles. */
struct list {
  double *v;
  size_t n, cap;
};

static void push(struct list *l, double x) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 1 << 16;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
    if (l->v == NULL) die("out of memory");
  }
  l->v[l->n++] = x;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Where the value of header `name` ("\r\nname:", lower case) starts in head[0, end), or NULL. */
static const char *header_value(const char *head, size_t end, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i + n <= end; i++) {
    if (strncasecmp(head + i, name, n) == 0) {
      const char *v = head + i + n;
      while (*v == ' ') v++;
      return v;
    }
  }
  return NULL;
}

/* The length of the complete response at the start of c->buf, or 0 while it is incomplete. */
static size_t complete(const struct conn *c) {
  const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
  if (end == NULL) {
    if (c->len == BUF) die("a response head larger than the buffer");
    return 0;
  }
  size_t head = end - c->buf, total = head + 4;
  const char *cl = header_value(c->buf, head, "\r\ncontent-length:");
  if (cl != NULL) {
    total += strtoul(cl, NULL, 10);
  } else if (header_value(c->buf, head, "\r\ntransfer-encoding: chunked") != NULL) {
    const char *z = memmem(c->buf + total, c->len - total, "0\r\n\r\n", 5);
    if (z == NULL) return 0;
    total = z + 5 - c->buf;
  }
  if (total > BUF) die("a response larger than the buffer");
  return c->len >= total ? total : 0;
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: fixed-rate <port> <rate> <seconds> <warmup-seconds> <connections> <request-file>\n");
    return 2;
  }
  int port = atoi(argv[1]), nconn = atoi(argv[5]);
  double rate = atof(argv[2]), seconds = atof(argv[3]), warmup = atof(argv[4]);
  if (port <= 0 || nconn <= 0 || !(rate > 0) || !(seconds > 0) || warmup < 0) die("bad arguments");

  FILE *f = fopen(argv[6], "rb");
  if (f == NULL) die("cannot open the request file");
  static char req[BUF];
  size_t req_len = fread(req, 1, sizeof req, f);
  fclose(f);
  if (req_len == 0 || req_len == sizeof req) die("the request file is empty or too large");

  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct conn *conns = calloc(nconn, sizeof *conns);
  int *idle = malloc(nconn * sizeof *idle), nidle = 0;
  if (conns == NULL || idle == NULL) die("out of memory");
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  for (int i = 0; i < nconn; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    conns[i].fd = fd;
    idle[nidle++] = i;
  }

  /* Due times not yet sent, oldest first: a ring as large as the whole run can ever need. */
  double interval = 1e3 / rate, t0 = now_ms();
  double measure_from = t0 + warmup * 1e3, stop_at = measure_from + seconds * 1e3;
  size_t ring_cap = (size_t)(rate * (seconds + warmup)) + 2, head = 0, tail = 0;
  double *ring = malloc(ring_cap * sizeof *ring);
  if (ring == NULL) die("out of memory");
  struct list lat = { 0 }, gaps = { 0 };
  long statuses[600] = { 0 }, errors = 0, sent = 0, outstanding = 0;
  double next = t0, last = t0;
  struct epoll_event events[64];

  for (;;) {
    double now = now_ms();
    if (now - last >= 0.05) push(&gaps, now - last);
    last = now;
    for (; next <= now && next < stop_at; next += interval) ring[tail++] = next;
    while (head < tail && nidle > 0) {
      struct conn *c = &conns[idle[--nidle]];
      c->due = ring[head++];
      c->len = 0;
      c->busy = 1;
      if (write(c->fd, req, req_len) != (ssize_t)req_len) die("a request could not be written whole");
      sent++;
      outstanding++;
    }
    if (next >= stop_at && head == tail && outstanding == 0) break;
    if (now > stop_at + 10e3) die("answers still missing 10 s after the last request was due");
    int n = epoll_wait(ep, events, 64, 0);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      struct conn *c = &conns[events[k].data.u32];
      if (!c->busy) die("the server sent bytes on a connection with no request in flight");
      ssize_t got = read(c->fd, c->buf + c->len, BUF - c->len);
      if (got == 0) die("the server closed a connection");
      if (got < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        die("read");
      }
      c->len += got;
      size_t total = complete(c);
      if (total == 0) continue;
      if (c->len > total) die("more than one response on a connection with one request in flight");
      double end = now_ms();
      if (c->due >= measure_from) push(&lat, (end - c->due) * 1e3);
      int status = c->len > 12 ? atoi(c->buf + 9) : 0;
      if (status > 0 && status < 600) statuses[status]++;
      else errors++;
      outstanding--;
      c->busy = 0;
      idle[nidle++] = events[k].data.u32;
    }
  }

  qsort(lat.v, lat.n, sizeof *lat.v, by_value);
#define AT(q) (lat.n ? lat.v[(size_t)((q) * lat.n) < lat.n ? (size_t)((q) * lat.n) : lat.n - 1] : 0)
  printf("{\"requests\":%zu,\"sent\":%ld,\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"errors\":%ld,\"statuses\":{",
         lat.n, sent, AT(0.5), AT(0.99), AT(0.999), lat.n ? lat.v[lat.n - 1] : 0, errors);
  for (int s = 0, first = 1; s < 600; s++) {
    if (statuses[s] == 0) continue;
    printf(first ? "\"%d\":%ld" : ",\"%d\":%ld", s, statuses[s]);
    first = 0;
  }
  printf("},\"gaps\":[");
  for (size_t i = 0; i < gaps.n; i++) printf(i ? ",%.4f" : "%.4f", gaps.v[i]);
  printf("]}\n");
  return 0;
}

// jemalloc's options for the serving programs (compiled in; MALLOC_CONF in the environment still
// overrides any of them). A server's heap breathes with its load: without a background thread,
// jemalloc returns freed pages to the system only when some thread happens to allocate again in
// that arena, so memory freed after a burst (or by a quiet arena) stays resident for good.
//   background_thread:true  a jemalloc thread purges unused dirty pages on time, not on traffic
//   dirty_decay_ms:10000    freed pages stay reusable for 10 s, then go back to the system
//   muzzy_decay_ms:0        ... at once (MADV_DONTNEED), not through a second lazy stage
extern "C" {
__attribute__((used, visibility("default"))) const char* malloc_conf =
    "background_thread:true,dirty_decay_ms:10000,muzzy_decay_ms:0";
}

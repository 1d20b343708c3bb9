import { app } from "@azure/functions";

// Imported by every function module that registers an HTTP function, before it registers. With
// streams on, the worker runs an HTTP proxy and the host forwards each HTTP request to it, so a
// request or response body (the CSV export: ~96 MB for 1M records) flows through as a stream
// instead of being buffered whole in the worker and sent over RPC. Needs Functions host 4.28+.
// Process-wide, and fixed once the worker has started: every HTTP function of the app streams.
app.setup({ enableHttpStream: true });

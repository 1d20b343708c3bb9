import type { Server } from "node:net";

/** Starts `server` listening (port 0 = ephemeral; default host 127.0.0.1) and resolves once it is, or rejects on the listen error. */
export function listen(server: Server, port = 0, host = "127.0.0.1"): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

// Start-up failures a user fixes by changing a setting or their machine (a port already taken, a
// folder the embedded PostgreSQL cannot reach). The CLI prints their message as one line, without a
// stack trace, and exits 1; anything else is a bug and keeps its stack.
import net from 'node:net';

export class StartupError extends Error {
  override name = 'StartupError';
}

/**
 * Turns a listen failure into the line that names the setting to change: `EADDRINUSE` (another
 * process holds the port) and `EACCES` (a port below 1024 without the privilege). Any other error is
 * returned unchanged.
 *
 * @param variable the environment variable that chose the port, e.g. `PORT`
 */
export function explainListenError(err: unknown, variable: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'EADDRINUSE') {
    return new StartupError(
      `port ${port} is already in use (${variable}): stop what holds it — another stream-api serve? — or set ${variable} to a free port`,
      { cause: err },
    );
  }
  if (code === 'EACCES') {
    return new StartupError(`port ${port} needs privileges this process lacks (${variable}): set ${variable} to a port above 1023`, {
      cause: err,
    });
  }
  return err;
}

/**
 * Fails fast, before anything starts, when a port this process will listen on is taken (port 0 —
 * any free port — is never taken). The real listen still maps its own failure with
 * explainListenError: another process may take the port in between.
 */
export async function assertPortFree(variable: string, port: number, host: string): Promise<void> {
  if (port === 0) return;
  const err = await new Promise<unknown>((resolve) => {
    const probe = net.createServer();
    probe.once('error', resolve);
    probe.listen(port, host, () => probe.close(() => resolve(null)));
  });
  if (err) throw explainListenError(err, variable, port);
}

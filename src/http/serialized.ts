// SIGHUP reloads of every process run one at a time.
/**
 * One reload at a time. Two overlapping reloads (two SIGHUPs close together) could otherwise finish
 * out of order: the one that read the older files would swap its config in last, and both would
 * close the same old policy engine. A SIGHUP during a reload runs one more reload after it, which
 * reads the files as they are then; further SIGHUPs meanwhile share that one.
 */
export function serialized(run: () => Promise<boolean>): () => Promise<boolean> {
  let running: Promise<boolean> | undefined;
  let queued: Promise<boolean> | undefined;
  const start = (): Promise<boolean> => (running = run().finally(() => { running = undefined; }));
  return () => {
    if (running === undefined) return start();
    const next = (): Promise<boolean> => {
      queued = undefined;
      return start();
    };
    return (queued ??= running.then(next, next));
  };
}

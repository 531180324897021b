/**
 * Sends what the process prints (Powertools: INFO to stdout, WARN and ERROR to stderr) to `sink`, one chunk
 * at a time, instead of the terminal; a write's callback still runs. Returns the function that puts the
 * real streams back.
 */
export const captureStdio = (sink: (chunk: string) => void): (() => void) => {
  const out = process.stdout.write;
  const err = process.stderr.write;
  const write = ((chunk: unknown, ...rest: unknown[]) => {
    sink(String(chunk));
    (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = write;
  process.stderr.write = write;
  return () => {
    process.stdout.write = out;
    process.stderr.write = err;
  };
};

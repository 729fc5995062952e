// The compose healthcheck of the coordinator and the workers: exit 0 when `url` (their
// /healthz) answers 2xx within `timeoutMs`, else 1. Node's fetch: the images have no curl.
const [url, timeoutMs = '5000'] = process.argv.slice(2);
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(Number(timeoutMs)) });
  process.exit(response.ok ? 0 : 1);
} catch {
  process.exit(1);
}

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { FeedbackPost } from './deliverer.ts';

/**
 * The real POST of feedback events: JSON body, basic credentials when configured, HTTPS with certificate verification
 * against `ca` (or the system store), a deadline per attempt.
 */
export function httpFeedbackPost(options: { ca?: string; verify?: boolean; timeoutMs?: number; userAgent?: string }) {
  const post: FeedbackPost = (target, body) =>
    new Promise<number>((resolve, reject) => {
      const url = new URL(target.url);
      const headers: Record<string, string | number> = {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'user-agent': options.userAgent ?? 'Crossway',
      };
      if (target.username !== undefined) {
        headers.authorization = `Basic ${Buffer.from(`${target.username}:${target.password ?? ''}`).toString('base64')}`;
      }
      const common = { method: 'POST', headers, timeout: options.timeoutMs ?? 10_000 };
      const req =
        url.protocol === 'https:'
          ? httpsRequest(url, {
              ...common,
              rejectUnauthorized: options.verify ?? true,
              ...(options.ca ? { ca: options.ca } : {}),
              minVersion: 'TLSv1.2',
            })
          : httpRequest(url, common);
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(body);
    });
  return post;
}

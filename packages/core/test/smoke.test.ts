import { describe, expect, it } from 'vitest';
import { createServer, definePlugin, deny } from '@quail/core';
import { tempRoot } from '@quail/core/testing';
import { Connection } from '@quail/core';

describe('smoke', () => {
  it('starts a server with a plugin', async () => {
    const { root, cleanup } = await tempRoot({ me: 'mx.example.test\n' });
    const p = definePlugin({ name: 'p', register(ctx) { ctx.hooks.connect.tapPromise(ctx.name, async () => deny(554, 'no')); } });
    const s = createServer({ root, plugins: [p], log: { level: 'silent' } });
    await s.start();
    const v = await s.hooks.connect.promise(new Connection({ protocol: 'smtp', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 25 }));
    expect(v).toEqual({ kind: 'deny', code: 554, message: 'no' });
    expect(s.control.me).toBe('mx.example.test');
    await s.stop();
    await cleanup();
  });
});

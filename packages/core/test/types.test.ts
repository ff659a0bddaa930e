import { describe, expectTypeOf, it } from 'vitest';
import { control, definePlugin, qmailFiles } from '@quail/core';

describe('plugin config types', () => {
  it('are inferred from the control declarations', () => {
    definePlugin({
      name: 'typed',
      control: {
        databytes: qmailFiles.databytes,
        limit: control.int({ default: 5 }),
        hosts: control.list(),
        rules: control.lines({ parse: (raw) => raw.map((r) => ({ r })) }),
      },
      register(ctx) {
        expectTypeOf(ctx.config.databytes).toEqualTypeOf<number>();
        expectTypeOf(ctx.config.limit).toEqualTypeOf<number>();
        expectTypeOf(ctx.config.hosts).toEqualTypeOf<string[] | undefined>();
        expectTypeOf(ctx.config.rules).toEqualTypeOf<Array<{ r: string }> | undefined>();
      },
    });
  });
});

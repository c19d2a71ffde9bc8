// A local TypeDoc plugin: the entry points are packages/<name>/src/index.ts, which TypeDoc would call
// "core/src"; name each module after its npm package instead (@t2md/core).
import { Converter, ReflectionKind } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const mod of context.project.getReflectionsByKind(ReflectionKind.Module)) {
      const m = /^([\w-]+)\/src$/.exec(mod.name);
      if (m) mod.name = `@t2md/${m[1]}`;
    }
  });
}

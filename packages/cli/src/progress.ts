import type { TrainProgress } from '@t2md/distill';
import { SingleBar } from 'cli-progress';

/** A progress bar on stderr (stdout stays clean), one per training stage, with loss and ETA. */
export function trainingBar(): { update(p: TrainProgress): void; stop(): void } {
  let bar: SingleBar | undefined;
  let stage = '';
  const quiet = !process.stderr.isTTY;
  let lastLine = 0;
  return {
    update(p) {
      if (quiet) {
        // Not a terminal (CI, a log file): a plain line every ~10% instead of redraws.
        const every = Math.max(1, Math.floor(p.total / 10));
        if (p.step === p.total || p.step - lastLine >= every || p.stage !== stage) {
          stage = p.stage;
          lastLine = p.step;
          process.stderr.write(
            `${p.stage} ${p.step}/${p.total} loss ${p.loss.toFixed(4)} ${p.secondsPerStep.toFixed(2)} s/step eta ${Math.round(p.etaSeconds)} s\n`,
          );
        }
        return;
      }
      if (p.stage !== stage) {
        bar?.stop();
        stage = p.stage;
        bar = new SingleBar({
          format: `${p.stage.padEnd(8)} {bar} {value}/{total} | loss {loss} | {sps} s/step | eta {eta_formatted}`,
          stream: process.stderr,
          etaBuffer: 20,
          hideCursor: true,
        });
        bar.start(p.total, 0, { loss: '-', sps: '-' });
      }
      bar?.update(p.step, { loss: p.loss.toFixed(4), sps: p.secondsPerStep.toFixed(2) });
    },
    stop() {
      bar?.stop();
    },
  };
}

/** An AbortSignal fired by the first Ctrl-C (SIGINT) or SIGTERM; a second Ctrl-C exits at once. */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  const onSignal = () => {
    if (ctl.signal.aborted) process.exit(130);
    process.stderr.write('\nt2md: interrupted; saving a checkpoint (Ctrl-C again to quit without it)\n');
    ctl.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ctl.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Types of trace-stays.mjs (the rule is in its header comment). */
export interface Step {
  /** The file of the function entered, relative to the root. */
  readonly file: string;
  readonly fn: string;
  readonly depth: number;
}
export interface Stay {
  readonly file: string;
  readonly steps: number;
}
export interface StayReport {
  readonly trace: readonly Step[];
  readonly stays: readonly Stay[];
  readonly files: number;
  readonly returns: number;
  readonly entered: Readonly<Record<string, number>>;
}
export function traceStays(args: { file: string; fn: string; param: string; root?: string; project?: boolean }): StayReport;
export function formatTrace(r: StayReport): string;

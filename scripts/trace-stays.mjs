#!/usr/bin/env node
/**
 * How often a reader who follows a function's options changes file, and how often they come back to a
 * file they already left (issue 24's measure of the trainer; style.md point 13: "a reader follows a run
 * without returning to a file already read").
 *
 *   node scripts/trace-stays.mjs packages/distill/src/trainer/pipeline.ts trainTeacher opts [--root DIR] [--project] [--json]
 *
 * The rule. The TypeScript program (rooted at FILE; `@t2md/<name>` resolves to
 * `packages/<name>/src/index.ts`) tells which declaration each call runs.
 *
 * 1. Derived values. Inside a function being read, a value is derived from the options when it is
 *    - the options parameter (in a callee: a parameter that received a derived argument; a destructured
 *      parameter makes every binding derived), or a variable bound to a derived value (`const`/`let`, a
 *      later assignment, a destructuring pattern, `for (x of derived)`);
 *    - a field of a derived value (`o.x`, `o[k]`), or one passed through unchanged (`(x)`, `x!`,
 *      `x as T`, `x satisfies T`, `await x`);
 *    - an object or array literal holding a derived value (as a property, an element or a spread): the
 *      whole literal is derived;
 *    - computed from derived values by an operator (`a ?? b`, `a === b`, `!a`, `typeof a`), a
 *      conditional `c ? a : b` (any of the three), or a template string.
 *    A call's result is not derived, even when the call received options: where the options go, the
 *    reader follows them into the callee (rule 2); what comes back is the callee's own value (a preset,
 *    a plan, a model). Bindings come from a fixpoint over the whole body, closures included
 *    (flow-insensitive). A closure's parameters are not derived, nor is a function value: a callback is
 *    read where it is written.
 * 2. Steps. The body is read in evaluation order: a call's callee and arguments before the call; a
 *    closure where it is written; both branches of an `if`. A call or `new` is *followed* when it
 *    receives a derived argument and runs a function with a body in the entry's package (the folder
 *    with the nearest package.json above FILE). Other packages are libraries, like node_modules: their
 *    calls are neither followed nor counted (`--project` follows every project package instead). A call
 *    through a value (`opts.data(...)`, an interface method) has no body to follow. A function already
 *    read is not read again, nor is one being read (recursion).
 * 3. Stays. The trace is the list of functions followed, in the order the reader enters them (depth
 *    first, as "each call that passes them on, in code order"). A *stay* is a maximal run of
 *    consecutive trace entries in one file; *returns* are the stays in a file already left
 *    (= stays − distinct files).
 *
 * Calibration at 1fc7c46 (issue 24 measured 36 stays in 14 files, 22 returns; pipeline.ts entered 6
 * times, run-options.ts 4, model-file.ts 4): this rule gives 36 stays in 15 files, 21 returns;
 * pipeline.ts 6, run-options.ts 3, model-file.ts 2.
 */
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * @typedef {{ file: string, fn: string, depth: number }} Step  one function entered (file relative to root)
 * @typedef {{ file: string, steps: number }} Stay  consecutive steps in one file
 * @typedef {{ trace: Step[], stays: Stay[], files: number, returns: number, entered: Record<string, number> }} StayReport
 */

/**
 * Follows the parameter `param` of function `fn` in `file` (relative to `root`, the repository root by
 * default). `project: true` follows calls into every project package, not only the entry's.
 * @param {{ file: string, fn: string, param: string, root?: string, project?: boolean }} args
 * @returns {StayReport}
 */
export function traceStays({ file, fn, param, root = resolve(here, '..'), project = false }) {
  const entryPath = resolve(root, file);
  const program = ts.createProgram([entryPath], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    baseUrl: root,
    paths: { '@t2md/*': ['packages/*/src/index.ts'] },
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entryPath);
  if (source == null) throw new Error(`${file} is not in the program.`);
  const entry = findFunction(source, fn);
  if (entry == null) throw new Error(`${file} has no function ${fn}.`);
  const seed = entry.parameters.find((p) => ts.isIdentifier(p.name) && p.name.text === param);
  if (seed == null) throw new Error(`${fn} has no parameter ${param}.`);

  const scope = project ? root : packageDir(entryPath, root);
  const followable = (/** @type {ts.SourceFile} */ sf) =>
    !sf.isDeclarationFile && !sf.fileName.includes('/node_modules/') && !relative(scope, sf.fileName).startsWith('..');
  const rel = (/** @type {ts.Node} */ n) => relative(root, n.getSourceFile().fileName);

  /** @type {Step[]} */
  const trace = [];
  /** @type {Set<ts.Node>} */
  const read = new Set();

  /**
   * Reads `f`, whose parameters `seeds` are derived, following its calls (rule 2).
   * @param {ts.FunctionLikeDeclaration} f
   * @param {ts.ParameterDeclaration[]} seeds
   * @param {number} depth
   */
  const readFunction = (f, seeds, depth) => {
    read.add(f);
    trace.push({ file: rel(f), fn: nameOf(f), depth });
    const derived = derivedSymbols(checker, f, seeds);
    const isDerived = (/** @type {ts.Expression} */ e) => derivedExpr(checker, derived, e);
    /** @param {ts.Node} node */
    const walk = (node) => {
      if (!ts.isCallExpression(node) && !ts.isNewExpression(node)) {
        ts.forEachChild(node, walk);
        return;
      }
      walk(node.expression);
      const args = [...(node.arguments ?? [])];
      for (const a of args) walk(a);
      const target = bodyOf(checker, node);
      if (target == null || read.has(target) || !followable(target.getSourceFile())) return;
      const passed = target.parameters.filter((p, i) =>
        p.dotDotDotToken ? args.slice(i).some(isDerived) : args[i] != null && isDerived(args[i]),
      );
      if (passed.length > 0) readFunction(target, passed, depth + 1);
    };
    if (f.body) walk(f.body);
  };
  readFunction(entry, [seed], 0);

  /** @type {Stay[]} */
  const stays = [];
  for (const t of trace) {
    const last = stays[stays.length - 1];
    if (last?.file === t.file) last.steps += 1;
    else stays.push({ file: t.file, steps: 1 });
  }
  /** @type {Record<string, number>} */
  const entered = {};
  for (const s of stays) entered[s.file] = (entered[s.file] ?? 0) + 1;
  const files = Object.keys(entered).length;
  return { trace, stays, files, returns: stays.length - files, entered };
}

/** The trace, one function a line (indented by depth), then the counts. @param {StayReport} r */
export function formatTrace(r) {
  const lines = r.trace.map((t) => `${'  '.repeat(t.depth)}${t.file}:${t.fn}`);
  const byFile = Object.entries(r.entered)
    .map(([f, n]) => `${f} ×${n}`)
    .join(', ');
  return [...lines, '', `${r.stays.length} stays in ${r.files} files, ${r.returns} returns to a file already left`, byFile].join('\n');
}

/** The folder of the nearest package.json above `file` (at most `root`). @param {string} file @param {string} root */
function packageDir(file, root) {
  for (let d = dirname(file); !relative(root, d).startsWith('..'); d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (d === root) break;
  }
  return root;
}

/**
 * A top-level function declaration, or a `const` bound to a function, named `name`.
 * @param {ts.SourceFile} sf
 * @param {string} name
 * @returns {ts.FunctionLikeDeclaration | undefined}
 */
function findFunction(sf, name) {
  for (const s of sf.statements) {
    if (ts.isFunctionDeclaration(s) && s.name?.text === name && s.body) return s;
    if (ts.isVariableStatement(s)) {
      for (const d of s.declarationList.declarations) {
        if (ts.isIdentifier(d.name) && d.name.text === name && d.initializer && isFunctionValue(d.initializer)) return d.initializer;
      }
    }
  }
  return undefined;
}

/** @param {ts.Node} n @returns {n is ts.ArrowFunction | ts.FunctionExpression} */
function isFunctionValue(n) {
  return ts.isArrowFunction(n) || ts.isFunctionExpression(n);
}

/** @param {ts.FunctionLikeDeclaration} f */
function nameOf(f) {
  if (ts.isConstructorDeclaration(f)) return `new ${f.parent.name?.getText() ?? '(class)'}`;
  if (f.name) return f.name.getText();
  const p = f.parent;
  if ((ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p)) && p.name) return p.name.getText();
  return '(function)';
}

/**
 * The declaration with a body that a call or `new` runs, when the program can tell.
 * @param {ts.TypeChecker} checker
 * @param {ts.CallExpression | ts.NewExpression} call
 * @returns {ts.FunctionLikeDeclaration | undefined}
 */
function bodyOf(checker, call) {
  const e = call.expression;
  let sym = checker.getSymbolAtLocation(ts.isPropertyAccessExpression(e) ? e.name : e);
  if (sym == null) return undefined;
  if (sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
  for (const d of sym.declarations ?? []) {
    if ((ts.isFunctionDeclaration(d) || ts.isMethodDeclaration(d)) && d.body) return d;
    if ((ts.isVariableDeclaration(d) || ts.isPropertyAssignment(d)) && d.initializer && isFunctionValue(d.initializer))
      return d.initializer;
    if (ts.isClassDeclaration(d) && ts.isNewExpression(call)) {
      return d.members.find((m) => ts.isConstructorDeclaration(m) && m.body != null);
    }
  }
  return undefined;
}

/**
 * The symbols of `f`'s body bound to derived values (rule 1), by fixpoint.
 * @param {ts.TypeChecker} checker
 * @param {ts.FunctionLikeDeclaration} f
 * @param {ts.ParameterDeclaration[]} seeds
 */
function derivedSymbols(checker, f, seeds) {
  /** @type {Set<ts.Symbol>} */
  const derived = new Set();
  let changed = true;
  const add = (/** @type {ts.Node} */ id) => {
    const s = checker.getSymbolAtLocation(id);
    if (s && !derived.has(s)) {
      derived.add(s);
      changed = true;
    }
  };
  /** @param {ts.BindingName} name */
  const bind = (name) => {
    if (ts.isIdentifier(name)) add(name);
    else for (const el of name.elements) if (!ts.isOmittedExpression(el)) bind(el.name);
  };
  /** @param {ts.Expression} target */
  const assignTo = (target) => {
    if (ts.isIdentifier(target)) add(target);
    else if (ts.isParenthesizedExpression(target)) assignTo(target.expression);
    else if (ts.isArrayLiteralExpression(target)) for (const el of target.elements) assignTo(el);
    else if (ts.isObjectLiteralExpression(target)) {
      for (const p of target.properties) {
        if (ts.isShorthandPropertyAssignment(p)) add(p.name);
        else if (ts.isPropertyAssignment(p)) assignTo(p.initializer);
      }
    }
  };
  const isDerived = (/** @type {ts.Expression} */ e) => derivedExpr(checker, derived, e);
  /** @param {ts.Node} node */
  const visit = (node) => {
    if (ts.isVariableDeclaration(node) && node.initializer && isDerived(node.initializer)) bind(node.name);
    else if (ts.isBinaryExpression(node) && isAssignment(node.operatorToken.kind) && isDerived(node.right)) assignTo(node.left);
    else if ((ts.isForOfStatement(node) || ts.isForInStatement(node)) && isDerived(node.expression)) {
      const init = node.initializer;
      if (ts.isVariableDeclarationList(init)) for (const d of init.declarations) bind(d.name);
      else assignTo(init);
    }
    ts.forEachChild(node, visit);
  };
  for (const p of seeds) bind(p.name);
  while (changed) {
    changed = false;
    if (f.body) visit(f.body);
  }
  return derived;
}

/** @param {ts.SyntaxKind} k */
function isAssignment(k) {
  return k >= ts.SyntaxKind.FirstAssignment && k <= ts.SyntaxKind.LastAssignment;
}

/**
 * Whether `e` is derived (rule 1), given the derived symbols.
 * @param {ts.TypeChecker} checker
 * @param {Set<ts.Symbol>} derived
 * @param {ts.Expression} e
 * @returns {boolean}
 */
function derivedExpr(checker, derived, e) {
  const d = (/** @type {ts.Expression} */ x) => derivedExpr(checker, derived, x);
  if (ts.isIdentifier(e)) {
    const s = checker.getSymbolAtLocation(e);
    return s != null && derived.has(s);
  }
  if (ts.isPropertyAccessExpression(e) || ts.isElementAccessExpression(e)) return d(e.expression);
  if (
    ts.isParenthesizedExpression(e) ||
    ts.isNonNullExpression(e) ||
    ts.isAsExpression(e) ||
    ts.isSatisfiesExpression(e) ||
    ts.isTypeAssertionExpression(e) ||
    ts.isAwaitExpression(e) ||
    ts.isSpreadElement(e) ||
    ts.isTypeOfExpression(e)
  ) {
    return d(e.expression);
  }
  if (ts.isPrefixUnaryExpression(e) || ts.isPostfixUnaryExpression(e)) return d(e.operand);
  if (ts.isObjectLiteralExpression(e)) {
    return e.properties.some((p) => {
      if (ts.isShorthandPropertyAssignment(p)) {
        const s = checker.getShorthandAssignmentValueSymbol(p);
        return s != null && derived.has(s);
      }
      if (ts.isPropertyAssignment(p)) return d(p.initializer);
      if (ts.isSpreadAssignment(p)) return d(p.expression);
      return false;
    });
  }
  if (ts.isArrayLiteralExpression(e)) return e.elements.some(d);
  if (ts.isBinaryExpression(e)) return d(e.left) || d(e.right);
  if (ts.isConditionalExpression(e)) return d(e.condition) || d(e.whenTrue) || d(e.whenFalse);
  if (ts.isTemplateExpression(e)) return e.templateSpans.some((s) => d(s.expression));
  return false;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const take = (/** @type {string} */ flag) => {
    const i = args.indexOf(flag);
    return i < 0 ? false : args.splice(i, 1).length > 0;
  };
  const json = take('--json');
  const project = take('--project');
  const r = args.indexOf('--root');
  const root = r < 0 ? process.cwd() : resolve(args.splice(r, 2)[1] ?? '.');
  const [file, fn, param] = args;
  if (file == null || fn == null || param == null) {
    console.error('usage: node scripts/trace-stays.mjs FILE FUNCTION PARAM [--root DIR] [--project] [--json]');
    process.exit(2);
  }
  const report = traceStays({ file, fn, param, root, project });
  console.log(json ? JSON.stringify(report, null, 2) : formatTrace(report));
}

// aws-local-stepfunctions (Node), in-process, as a benchmark driver: the protocol of
// harness/protocol.py. The package is installed outside the repository (.bench/node); the
// orchestrator passes its entry point with --module.
//
// Every run records its event log (the library queues every event of every execution,
// whether or not it is read); the warm-up execution's log is read to count StateEntered
// events. Lambda Tasks run a local no-op async function (overrides.taskResourceLocalHandlers).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

function parseArgs(argv) {
  const args = { repeat: 3, holdSeconds: 10 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    args[key] = argv[i + 1];
  }
  for (const key of ['executions', 'repeat', 'holdSeconds']) args[key] = Number(args[key]);
  return args;
}

// Equal as JSON values (75 == 75.0), as harness/workloads.py same_json.
function sameJson(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameJson(a[k], b[k]));
  }
  return a === b;
}

function loadWorkload(dir, name) {
  const entry = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))[name];
  const read = (file) => JSON.parse(readFileSync(join(dir, file), 'utf8'));
  return {
    definition: read(entry.definition),
    input: read(entry.input),
    expected: read(entry.expected_output),
  };
}

// aws-local-stepfunctions 3.0.0 asks for Node >= 22 and calls Promise.withResolvers (ES2024)
// in Task states; an older Node gets the standard definition, and the row says so.
let note = null;
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
  note = `Node ${process.version} lacks Promise.withResolvers (the package asks for Node >= 22): polyfilled`;
}

const args = parseArgs(process.argv.slice(2));
const { StateMachine } = await import(pathToFileURL(args.module).href);
const pkg = JSON.parse(readFileSync(join(args.module, '..', '..', 'package.json'), 'utf8'));
const work = loadWorkload(args.workloads, args.workload);
if (args.mode === 'fleet') {
  for (const state of Object.values(work.definition.States)) {
    if (state.Type === 'Wait') state.Seconds = args.holdSeconds;
  }
}
const handlers = {};
for (const [name, state] of Object.entries(work.definition.States)) {
  if (state.Type === 'Task') handlers[name] = async (input) => input;
}
const options = { overrides: { taskResourceLocalHandlers: handlers } };
const rssKb = () => Math.floor(process.memoryUsage().rss / 1024);

let error = null;
let history = null;
let fleet = null;
const walls = [];
// one warm-up run first, its time discarded (none for wait_fleet): harness/protocol.py
const runs = args.mode === 'fleet' ? args.repeat : args.repeat + 1;

async function runOne(machine) {
  try {
    const output = await machine.run(work.input, options).result;
    if (!sameJson(output, work.expected)) {
      error ??= `wrong output ${JSON.stringify(output).slice(0, 200)}`;
    }
  } catch (err) {
    error ??= `${err.name}: ${String(err.message).slice(0, 200)}`;
  }
}

try {
  const machine = new StateMachine(work.definition);
  for (let rep = 0; rep < runs; rep++) {
    const warm = machine.run(work.input, options);
    const counting = (async () => {
      let entered = 0;
      for await (const event of warm.eventLogs) if (event.type === 'StateEntered') entered++;
      return entered;
    })();
    try {
      const output = await warm.result;
      if (!sameJson(output, work.expected)) error ??= `wrong output ${JSON.stringify(output).slice(0, 200)}`;
    } catch (err) {
      error ??= `${err.name}: ${String(err.message).slice(0, 200)}`;
    }
    history = await counting;
    if (args.mode === 'fleet') {
      globalThis.gc?.();
      const before = rssKb();
      const began = performance.now();
      let done = 0;
      const all = [];
      for (let i = 0; i < args.executions; i++) all.push(runOne(machine).then(() => done++));
      // let every execution reach its Wait state before memory is read
      await new Promise((resolve) => setTimeout(resolve, 0));
      const started = (performance.now() - began) / 1000;
      const after = rssKb();
      const waiting = started < args.holdSeconds && done === 0 ? args.executions : null;
      await Promise.all(all);
      const finished = (performance.now() - began) / 1000;
      walls.push(finished);
      fleet = {
        hold_seconds: args.holdSeconds,
        start_s: started,
        all_done_s: finished,
        waiting,
        rss_before_kb: before,
        rss_waiting_kb: after,
        threads_per_waiting: 0,
      };
      continue;
    }
    const began = performance.now();
    if (args.mode === 'sequential') {
      for (let i = 0; i < args.executions; i++) await runOne(machine);
    } else {
      const all = [];
      for (let i = 0; i < args.executions; i++) all.push(runOne(machine));
      await Promise.all(all);
    }
    walls.push((performance.now() - began) / 1000);
  }
} catch (err) {
  error ??= `${err.name}: ${String(err.message).slice(0, 300)}`;
}

process.stdout.write(
  JSON.stringify({
    engine: args.engine,
    workload: args.workload,
    mode: args.mode,
    executions: args.executions,
    version: `aws-local-stepfunctions ${pkg.version} (Node ${process.version})`,
    note,
    walls: args.mode === 'fleet' ? walls : walls.slice(1),
    output_ok: error === null && walls.length === runs,
    error,
    history_transitions: history,
    fleet,
  }) + '\n',
);

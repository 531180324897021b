// A jest test environment for mutation runs only (jest.stryker.config.cjs): once a test fails while
// Stryker has a mutant active, every later test of that mutant's run is skipped, in this file and in
// every following one (Stryker runs jest in band, in one process). One failing test is all Stryker
// needs to call a mutant killed, and @stryker-mutator/jest-runner forces `bail: false`, so without
// this a mutant that breaks something early still runs every related test (30–100 s for the
// integration suites). Outside a mutant run (plain jest, Stryker's dry run) it changes nothing.
const { TestEnvironment } = require('jest-environment-node');

const ACTIVE_MUTANT = '__STRYKER_ACTIVE_MUTANT__';
// Process-wide, not module-wide: survives however jest loads this file for each test file.
const STATE = Symbol.for('otp-service.stryker-bail');
const state = (globalThis[STATE] ??= { failedMutant: undefined });

// Tests left out of mutation runs (skipped in the initial run, so no mutant is ever given them): the
// 30-request storms of tests/integration/rate-limit.test.ts fail closed (503) when the machine is loaded far
// beyond its cores, as it is with Stryker's instrumented code running next to other work. The limits they
// check are also pinned by tests/unit/limiter.test.ts and the rate-limit property tests. And the source
// hygiene tests of tests/integration/headers-and-logs.test.ts: they read the sources' text, which in Stryker's
// sandbox is the instrumented copy (`httpErrorHandler(stryMutAct_…(…))`), so they fail before any mutant.
const LEFT_OUT = new RegExp(process.env.MUTATE_SKIP_TESTS ?? '^(a storm of 30 parallel sends|source hygiene )');
const fullName = (test) => {
  const names = [];
  for (let block = test; block !== undefined && block.parent !== undefined; block = block.parent) names.unshift(block.name);
  return names.join(' ');
};

const activeMutant = () => process.env[ACTIVE_MUTANT];
const alreadyKilled = () => activeMutant() !== undefined && state.failedMutant === activeMutant();

// After a mutant's first failure the rest of its run is skipped, so a failed test's requests still in
// flight can meet a stand-in that afterAll has already closed (dynalite: "Database is closed"), outside any
// test. Such a leftover must not crash Stryker's test-runner process: once a mutant has been killed in this
// process, stray errors are reported on stderr and ignored. Before any kill (the dry run, a mutant still
// running clean) nothing is caught here, so real crashes still surface.
const ignoreLeftover = (error) => {
  if (state.failedMutant === undefined) throw error;
  process.stderr.write(`stryker-bail-environment: ignored a leftover of killed mutant ${state.failedMutant}: ${error?.message ?? error}\n`);
};
if (!state.listening) {
  state.listening = true;
  process.on('uncaughtException', ignoreLeftover);
  process.on('unhandledRejection', ignoreLeftover);
}

/**
 * Marks every describe block and test not yet run as skipped. jest-circus decides skipping per block
 * when it reaches it, so every level must be marked (a skipped parent alone would still run a nested
 * block's beforeAll). A block whose tests are all skipped runs none of its hooks: no stack is started
 * for nothing. A block already running keeps its afterAll (its cleanup still happens).
 */
const skipAll = (block) => {
  block.mode = 'skip';
  for (const child of block.children ?? []) {
    if (child.type === 'describeBlock') skipAll(child);
    else child.mode = 'skip';
  }
};

// jest.retryTimes' global (jest-circus reads it from the test file's global).
const RETRY_TIMES = Symbol.for('RETRY_TIMES');

class StrykerBailEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    // Stryker's initial (dry) run must be all green, and a few timing-bound tests (the rate-limit storms,
    // the provider fault queue) can fail on a machine loaded far beyond its cores: retry those there.
    // Never during a mutant's run, where a failure is the answer sought.
    if (activeMutant() === undefined && this.global[RETRY_TIMES] === undefined) this.global[RETRY_TIMES] = 2;
  }

  async handleTestEvent(event, eventState) {
    if (event.name === 'run_start' && alreadyKilled()) {
      skipAll(eventState.rootDescribeBlock);
    } else if (event.name === 'test_start' && (alreadyKilled() || LEFT_OUT.test(fullName(event.test)))) {
      event.test.mode = 'skip';
    } else if (event.name === 'test_done' && event.test.errors.length > 0 && activeMutant() !== undefined) {
      state.failedMutant = activeMutant();
      for (const child of eventState.rootDescribeBlock.children) {
        if (child.type === 'describeBlock') skipAll(child);
        else if (child !== event.test) child.mode = 'skip';
      }
    }
  }
}

module.exports = StrykerBailEnvironment;

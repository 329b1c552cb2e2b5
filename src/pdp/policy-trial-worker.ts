// The worker of policy-trial.ts: loads the policies of the PdpConfig it is given, from the texts it
// is given, into a throwaway engine (Pdp.check) and answers with their problems, none when they load.
import { parentPort, workerData } from 'node:worker_threads';
import type { PdpConfig } from '../config/types.ts';
import { Pdp } from './index.ts';

export interface TrialInput {
  readonly pdp: PdpConfig;
  /** Each policy file's text, as the parent read it (it loads the same text after the trial). */
  readonly texts: Readonly<Record<string, string>>;
}

const { pdp, texts } = workerData as TrialInput;
const { problems } = await Pdp.check(pdp, { readFile: async (path) => texts[path] ?? '' });
parentPort!.postMessage(problems);

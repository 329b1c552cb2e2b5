// The worker of policy-trial.ts: loads the policies of the PdpConfig it is given into a throwaway
// engine (Pdp.check) and answers with their problems, none when they load.
import { parentPort, workerData } from 'node:worker_threads';
import type { PdpConfig } from '../config/types.ts';
import { Pdp } from './index.ts';

const { problems } = await Pdp.check(workerData as PdpConfig);
parentPort!.postMessage(problems);

/** Bench bundle: the naive baseline handler, loaded only when `load()` is called (after the seam is in place). */
export * as sdk from '../seam-sdk';
export const load = (): typeof import('../../baseline/handler') => require('../../baseline/handler');

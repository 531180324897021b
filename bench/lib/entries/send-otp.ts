/** Bench bundle: our send handler, loaded only when `load()` is called (after the seam is in place). */
export * as sdk from '../seam-sdk';
export const load = (): typeof import('../../../handlers/send-otp') => require('../../../handlers/send-otp');

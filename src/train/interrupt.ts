/**
 * Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM: the first
 * signal asks the loop to finish its step, write a checkpoint and return; a
 * second one terminates at once.
 *
 * A training run is one synchronous call, and Node runs `process.on('SIGINT')`
 * listeners only between turns of its event loop, i.e. after training ended.
 * The binding therefore counts the signals in a C handler, and the loop polls
 * the count after every step.
 *
 * @module
 */
import { binding } from '../tensor'

/** Counts SIGINT/SIGTERM as stop requests from now on (and forgets earlier ones). */
export function trapInterrupts(): void {
  binding.trapInterrupts()
}

/** Lets SIGINT and SIGTERM terminate the process again. */
export function releaseInterrupts(): void {
  binding.releaseInterrupts()
}

/** Whether a stop was requested since {@link trapInterrupts} (never, without it). */
export function interruptRequested(): boolean {
  return binding.interruptRequests() > 0
}

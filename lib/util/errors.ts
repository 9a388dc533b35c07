/**
 * Errors raised for bad input. The message always names the offending file or
 * parameter so a user can fix it without reading a stack trace.
 * @module
 */

/** A user-facing error: bad parameter, missing/corrupt file. The CLI prints only its message. */
export class NoiselabError extends Error {
  /** The parameter or file the error is about (for machine-readable output). */
  readonly subject?: string;
  constructor(message: string, subject?: string) {
    super(message);
    this.name = "NoiselabError";
    this.subject = subject;
  }
}

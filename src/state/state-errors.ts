import { MechrouteError } from '../errors.js';

export class StateFileBusyError extends MechrouteError {
  constructor(path: string) {
    super(
      'MR_ERR_STATE_BUSY',
      `the state file ${path} is in use by another mechroute server; ` +
        'give each server its own file (state.path in the config)',
    );
  }
}

export class NotAStateFileError extends MechrouteError {
  constructor(path: string, why: string) {
    super(
      'MR_ERR_STATE_INVALID',
      `${path} is not a mechroute state file (${why}); move it away or set state.path`,
    );
  }
}

export class StateSchemaTooNewError extends MechrouteError {
  constructor(path: string, found: number, known: number) {
    super(
      'MR_ERR_STATE_TOO_NEW',
      `the state file ${path} has schema version ${found}, written by a newer mechroute; this one knows up to ${known}`,
    );
  }
}

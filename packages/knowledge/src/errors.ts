import { AppError } from '@pincer/shared';

/** Why a file could not be turned into text; the codes are stable (the API and the job log show them). */
export type ExtractionErrorCode =
  'unsupported_type' | 'corrupt_file' | 'encrypted_file' | 'empty_document' | 'file_too_large';

const STATUS: Record<ExtractionErrorCode, number> = {
  unsupported_type: 415,
  corrupt_file: 422,
  encrypted_file: 422,
  empty_document: 422,
  file_too_large: 413,
};

/** A file the knowledge base cannot ingest; an AppError so the REST API can present it as is. */
export class ExtractionError extends AppError {
  declare readonly code: ExtractionErrorCode;

  constructor(code: ExtractionErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(STATUS[code], code, message, opts);
    this.name = 'ExtractionError';
  }
}

/** One problem in a configuration document, located by file, document path and line. */
export interface ConfigIssue {
  path: ReadonlyArray<string | number>;
  message: string;
  line?: number;
  column?: number;
  /** Locate the key rather than its value (an unknown field). */
  atKey?: boolean;
}

export function formatPath(path: ReadonlyArray<string | number>): string {
  if (path.length === 0) return '(document)';
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out;
}

/** Every problem found in one configuration file, reported together. */
export class ConfigError extends Error {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[]) {
    super(`invalid configuration ${file}:\n${issues.map((i) => `  ${formatIssue(file, i)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

export function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line === undefined ? file : `${file}:${issue.line}:${issue.column ?? 1}`;
  return `${where}: ${formatPath(issue.path)}: ${issue.message}`;
}

/** Values for a program delivery's environment (reference 5.4). */
export interface ProgramContext {
  sender: string;
  newSender: string;
  recipient: string;
  user: string;
  home: string;
  local: string;
  host: string;
  ext: string;
  /** Only set when a `-default` file was chosen. */
  defaultPart?: string;
  dtLine: string;
  rpLine: string;
  ufLine: string;
}

/** The PATH given to programs: nothing inherited from the daemon. */
export const PROGRAM_PATH = '/usr/local/bin:/usr/bin:/bin';

/** EXT after its first, second, third `-` ('' when missing). */
function extAfter(ext: string, dashes: number): string {
  let rest = ext;
  for (let i = 0; i < dashes; i++) {
    const at = rest.indexOf('-');
    if (at < 0) return '';
    rest = rest.slice(at + 1);
  }
  return rest;
}

/** HOST up to its last, second-to-last, third-to-last dot; the previous value repeats when dots run out. */
function hostParts(host: string): [string, string, string] {
  const out: string[] = [];
  let current = host;
  for (let i = 0; i < 3; i++) {
    const dot = current.lastIndexOf('.');
    if (dot >= 0) current = current.slice(0, dot);
    out.push(current);
  }
  return out as [string, string, string];
}

/** qmail-local's environment. Values are never quoted: they reach programs only as variables. */
export function programEnvironment(c: ProgramContext): Record<string, string> {
  const [host2, host3, host4] = hostParts(c.host);
  const env: Record<string, string> = {
    PATH: PROGRAM_PATH,
    SENDER: c.sender,
    NEWSENDER: c.newSender,
    RECIPIENT: c.recipient,
    USER: c.user,
    HOME: c.home,
    HOST: c.host,
    HOST2: host2,
    HOST3: host3,
    HOST4: host4,
    LOCAL: c.local,
    EXT: c.ext,
    EXT2: extAfter(c.ext, 1),
    EXT3: extAfter(c.ext, 2),
    EXT4: extAfter(c.ext, 3),
    DTLINE: c.dtLine,
    RPLINE: c.rpLine,
    UFLINE: c.ufLine,
  };
  if (c.defaultPart !== undefined) env.DEFAULT = c.defaultPart;
  return env;
}

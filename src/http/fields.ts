/** RFC 9110's token: what a header name is made of. */
export const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What would end a header line early, letting a value inject headers of its own. */
export const LINE_BREAK = /[\0\r\n]/;

/** Headers that frame the message or the connection: the HTTP client writes them, and a caller's value would contradict its own (request smuggling's start). */
export const FRAMING_HEADERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer']);

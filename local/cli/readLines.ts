import { createReadStream } from "node:fs";

/** One line of a text file: its text, or — when it is longer than the cap — its length and first characters. */
export type Line = { number: number; text: string } | { number: number; tooLongBytes: number; head: string };

/** Characters of an over-long line kept to say which line it was. */
const HEAD_CHARS = 200;

/**
 * The lines of a UTF-8 file (LF or CRLF; a BOM at the start is dropped), numbered from 1, holding at
 * most `maxLineBytes` of one line in memory: a longer line is read to its end but not kept (a line of
 * hundreds of MB would otherwise exceed what a string can hold and end the run).
 */
export async function* readLines(file: string, maxLineBytes: number): AsyncGenerator<Line> {
  let parts: Buffer[] = [];
  let kept = 0;
  let bytes = 0;
  let number = 0;
  const finish = (): Line => {
    number++;
    const buffer = Buffer.concat(parts);
    parts = [];
    kept = 0;
    const length = bytes;
    bytes = 0;
    let text = buffer.toString("utf8");
    if (number === 1 && text.startsWith("\uFEFF")) text = text.slice(1);
    if (length > maxLineBytes) return { number, tooLongBytes: length, head: text.slice(0, HEAD_CHARS) };
    return { number, text: text.endsWith("\r") ? text.slice(0, -1) : text };
  };
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let newline = chunk.indexOf(0x0a, start); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      keep(chunk.subarray(start, newline));
      yield finish();
      start = newline + 1;
    }
    keep(chunk.subarray(start));
  }
  if (bytes > 0) yield finish();

  function keep(piece: Buffer): void {
    bytes += piece.length;
    // Past the cap nothing more is kept: the line is only counted (its head is in the first bytes).
    const room = maxLineBytes - kept;
    if (room <= 0) return;
    const slice = piece.subarray(0, room);
    parts.push(slice);
    kept += slice.length;
  }
}

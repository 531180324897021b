/**
 * Reads the zip files `serverless package` writes, without `unzip` (not on every machine): the central
 * directory for the listing, the local header for an entry's data. Enough for the small, non-zip64
 * archives a Lambda bundle makes; anything else is refused loudly rather than misread.
 */
import { inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated */
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

export const listZip = (zip: Buffer): ZipEntry[] => {
  // The end-of-central-directory record is the last 22 bytes, plus a comment of up to 65535.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file: no end-of-central-directory record');
  const count = zip.readUInt16LE(eocd + 10);
  const offset = zip.readUInt32LE(eocd + 16);
  if (count === 0xffff || offset === 0xffffffff) throw new Error('zip64 archives are not supported here');

  const entries: ZipEntry[] = [];
  let p = offset;
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(p) !== CENTRAL) throw new Error(`corrupt zip: no central directory header at ${p}`);
    const nameLength = zip.readUInt16LE(p + 28);
    const extraLength = zip.readUInt16LE(p + 30);
    const commentLength = zip.readUInt16LE(p + 32);
    entries.push({
      method: zip.readUInt16LE(p + 10),
      compressedSize: zip.readUInt32LE(p + 20),
      size: zip.readUInt32LE(p + 24),
      localHeaderOffset: zip.readUInt32LE(p + 42),
      name: zip.toString('utf8', p + 46, p + 46 + nameLength),
    });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
};

export const readZipEntry = (zip: Buffer, entry: ZipEntry): Buffer => {
  const p = entry.localHeaderOffset;
  if (zip.readUInt32LE(p) !== LOCAL) throw new Error(`corrupt zip: no local header for ${entry.name}`);
  const start = p + 30 + zip.readUInt16LE(p + 26) + zip.readUInt16LE(p + 28);
  const data = zip.subarray(start, start + entry.compressedSize);
  const out = entry.method === 0 ? Buffer.from(data) : entry.method === 8 ? inflateRawSync(data) : undefined;
  if (out === undefined) throw new Error(`${entry.name}: compression method ${entry.method} is not supported here`);
  if (out.length !== entry.size) throw new Error(`${entry.name}: inflated to ${out.length} bytes, the directory says ${entry.size}`);
  return out;
};

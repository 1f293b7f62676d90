// The long connection's wire format: protobuf pbbp2.Frame (proto2, all header fields required),
// as the SDK's WSClient encodes and decodes it.
import protobuf from 'protobufjs';

const PROTO = `
syntax = "proto2";
package pbbp2;
message Header {
  required string key = 1;
  required string value = 2;
}
message Frame {
  required uint64 SeqID = 1;
  required uint64 LogID = 2;
  required int32 service = 3;
  required int32 method = 4;
  repeated Header headers = 5;
  optional string payloadEncoding = 6;
  optional string payloadType = 7;
  optional bytes payload = 8;
  optional string LogIDNew = 9;
}
`;

const FrameType = protobuf.parse(PROTO).root.lookupType('pbbp2.Frame');

/** method 0: control (ping/pong); method 1: data (events and their acks). */
export const METHOD_CONTROL = 0;
export const METHOD_DATA = 1;

export interface Frame {
  SeqID: number;
  LogID: number;
  service: number;
  method: number;
  headers: Array<{ key: string; value: string }>;
  payload?: Uint8Array;
  LogIDNew?: string;
}

export function encodeFrame(frame: Frame): Uint8Array {
  return FrameType.encode(FrameType.fromObject(frame)).finish();
}

export function decodeFrame(buf: Uint8Array): Frame {
  const obj = FrameType.toObject(FrameType.decode(buf), { longs: Number, defaults: true }) as Frame;
  return obj;
}

export function header(frame: Frame, key: string): string | undefined {
  return frame.headers.find((h) => h.key === key)?.value;
}

// Message type bytes and startup request codes of the PostgreSQL v3 protocol
// (protocol-message-formats in the PostgreSQL docs).

export const enum Frontend {
  Bind = 0x42, // B
  Close = 0x43, // C
  Describe = 0x44, // D
  Execute = 0x45, // E
  FunctionCall = 0x46, // F
  Flush = 0x48, // H
  Parse = 0x50, // P
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
  CopyFail = 0x66, // f
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  /** PasswordMessage, SASLInitialResponse and SASLResponse share 'p'. */
  Password = 0x70, // p
}

export const enum Backend {
  ParseComplete = 0x31, // 1
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  NotificationResponse = 0x41, // A
  CommandComplete = 0x43, // C
  DataRow = 0x44, // D
  ErrorResponse = 0x45, // E
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  EmptyQueryResponse = 0x49, // I
  BackendKeyData = 0x4b, // K
  NoticeResponse = 0x4e, // N
  Authentication = 0x52, // R
  ParameterStatus = 0x53, // S
  RowDescription = 0x54, // T
  FunctionCallResponse = 0x56, // V
  CopyBothResponse = 0x57, // W
  ReadyForQuery = 0x5a, // Z
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  NoData = 0x6e, // n
  PortalSuspended = 0x73, // s
  ParameterDescription = 0x74, // t
  NegotiateProtocolVersion = 0x76, // v
}

/** Codes carried in the version field of untyped startup-phase packets. */
export const enum StartupCode {
  ProtocolV3 = 196608, // 3.0
  CancelRequest = 80877102,
  SSLRequest = 80877103,
  GSSENCRequest = 80877104,
}

export const enum AuthCode {
  Ok = 0,
  CleartextPassword = 3,
  MD5Password = 5,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

/** Transaction status byte of ReadyForQuery. */
export const enum TxStatus {
  Idle = 0x49, // I
  InBlock = 0x54, // T
  Failed = 0x45, // E
}

/** A typed message's header (type byte and Int32 length): its body starts this many bytes in. */
export const MESSAGE_HEADER_BYTES = 5;

/** The one-byte answer to an SSLRequest. */
export const enum SslAnswer {
  Accepted = 0x53, // S
  Refused = 0x4e, // N
}

/** What a Close message names. */
export const enum CloseTarget {
  Statement = 0x53, // S
  Portal = 0x50, // P
}

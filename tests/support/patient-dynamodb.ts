/**
 * A stand-in module for `@aws-sdk/client-dynamodb` whose DynamoDBClient is built exactly as in production
 * except for a longer request timeout. Storm tests run many "Lambdas" at once in one process, on the same
 * event loop as dynalite; on a busy machine a DynamoDB call can then wait longer than the store's 2 s
 * request timeout or 1 s connection timeout (sized for DynamoDB, a few ms away) and fail closed: with 30
 * handlers and dynalite on one loop, a socket's `connect` event alone was seen to come later than 1 s at a
 * load average of 15. With this, storms measure the limits, not the machine's load. Use it as:
 *
 *   jest.mock('@aws-sdk/client-dynamodb', () => jest.requireActual('../support/patient-dynamodb').patientModule());
 */
export const PATIENT_REQUEST_TIMEOUT_MS = 15_000;

export const patientModule = (): typeof import('@aws-sdk/client-dynamodb') => {
  const actual = jest.requireActual<typeof import('@aws-sdk/client-dynamodb')>('@aws-sdk/client-dynamodb');
  class PatientDynamoDBClient extends actual.DynamoDBClient {
    constructor(...[config]: ConstructorParameters<typeof actual.DynamoDBClient>) {
      const handler = config?.requestHandler;
      const patient =
        handler !== undefined && typeof handler === 'object' && 'requestTimeout' in handler
          ? // The connection timeout too: 30 "Lambdas" share one client's sockets here, so a request can queue for one.
            { ...handler, requestTimeout: PATIENT_REQUEST_TIMEOUT_MS, connectionTimeout: PATIENT_REQUEST_TIMEOUT_MS }
          : handler;
      super({ ...config, requestHandler: patient });
    }
  }
  return { ...actual, DynamoDBClient: PatientDynamoDBClient };
};

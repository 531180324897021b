/**
 * The AWS SDK classes a bench bundle exports next to its handler. Bundled together with the handler, these
 * are the very classes (same module instances) the handler's code uses, so patching their prototypes
 * intercepts the handler's calls: the seam where DynamoDB and Secrets Manager are answered at once.
 */
export { DynamoDBClient, DeleteItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
export { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
export { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
export { NodeHttpHandler } from '@smithy/node-http-handler';
export { HttpResponse } from '@smithy/core/protocols';

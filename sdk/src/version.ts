/** Sent as context.sdk.version; a test keeps it equal to package.json's version. */
export const SDK_NAME = 'replayql-browser';
export const SDK_VERSION = '0.1.0';

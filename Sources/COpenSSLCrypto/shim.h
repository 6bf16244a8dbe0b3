// OpenSSL's libcrypto (Debian: libssl-dev), for AES-256-GCM in an encrypted store on Linux (StoreCipher).
#include <openssl/evp.h>

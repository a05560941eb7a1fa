#include "core/internal/asn1_types.h"

// The OpenSSL template macros expand to C-style casts.
#pragma GCC diagnostic ignored "-Wold-style-cast"

extern "C" {

ASN1_SEQUENCE(HALLMARK_SPKI) =
    {
        ASN1_SIMPLE(HALLMARK_SPKI, algor, X509_ALGOR),
        ASN1_SIMPLE(HALLMARK_SPKI, public_key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(HALLMARK_SPKI)

        IMPLEMENT_ASN1_FUNCTIONS(HALLMARK_SPKI)

            ASN1_SEQUENCE_enc(HALLMARK_CSR_INFO, enc, 0) =
                {
                    ASN1_SIMPLE(HALLMARK_CSR_INFO, version, ASN1_INTEGER),
                    ASN1_SIMPLE(HALLMARK_CSR_INFO, subject, X509_NAME),
                    ASN1_SIMPLE(HALLMARK_CSR_INFO, spki, HALLMARK_SPKI),
                    // RFC 2986 requires the attributes, but some tools omit them when empty; accept
                    // both.
                    ASN1_IMP_SET_OF_OPT(HALLMARK_CSR_INFO, attributes, X509_ATTRIBUTE, 0),
} ASN1_SEQUENCE_END_enc(HALLMARK_CSR_INFO, HALLMARK_CSR_INFO)

                    IMPLEMENT_ASN1_FUNCTIONS(HALLMARK_CSR_INFO)

                        ASN1_SEQUENCE(HALLMARK_CSR) =
                            {
                                ASN1_SIMPLE(HALLMARK_CSR, info, HALLMARK_CSR_INFO),
                                ASN1_SIMPLE(HALLMARK_CSR, sig_alg, X509_ALGOR),
                                ASN1_SIMPLE(HALLMARK_CSR, signature, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(HALLMARK_CSR)

                                IMPLEMENT_ASN1_FUNCTIONS(HALLMARK_CSR)

}  // extern "C"

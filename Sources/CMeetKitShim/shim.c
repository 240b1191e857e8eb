#include "CMeetKitShim.h"
#include <vpx/vp8cx.h>
#include <vpx/vp8dx.h>

int mk_opus_encoder_set(OpusEncoder *enc, int request, int32_t value) {
    return opus_encoder_ctl(enc, request, (opus_int32)value);
}

int mk_opus_encoder_get(OpusEncoder *enc, int request, int32_t *value) {
    opus_int32 v = 0;
    int rc = opus_encoder_ctl(enc, request, &v);
    *value = (int32_t)v;
    return rc;
}

int mk_opus_encoder_reset(OpusEncoder *enc) { return opus_encoder_ctl(enc, OPUS_RESET_STATE); }

int mk_opus_decoder_set(OpusDecoder *dec, int request, int32_t value) {
    return opus_decoder_ctl(dec, request, (opus_int32)value);
}

int mk_opus_decoder_get(OpusDecoder *dec, int request, int32_t *value) {
    opus_int32 v = 0;
    int rc = opus_decoder_ctl(dec, request, &v);
    *value = (int32_t)v;
    return rc;
}

int mk_opus_decoder_reset(OpusDecoder *dec) { return opus_decoder_ctl(dec, OPUS_RESET_STATE); }

vpx_codec_err_t mk_vpx_vp8_enc_init(vpx_codec_ctx_t *ctx, const vpx_codec_enc_cfg_t *cfg,
                                    vpx_codec_flags_t flags) {
    return vpx_codec_enc_init(ctx, vpx_codec_vp8_cx(), cfg, flags);
}

vpx_codec_err_t mk_vpx_vp8_enc_config_default(vpx_codec_enc_cfg_t *cfg) {
    return vpx_codec_enc_config_default(vpx_codec_vp8_cx(), cfg, 0);
}

vpx_codec_err_t mk_vpx_vp8_dec_init(vpx_codec_ctx_t *ctx, const vpx_codec_dec_cfg_t *cfg,
                                    vpx_codec_flags_t flags) {
    return vpx_codec_dec_init(ctx, vpx_codec_vp8_dx(), cfg, flags);
}

vpx_codec_err_t mk_vpx_control_int(vpx_codec_ctx_t *ctx, int id, int value) {
    return vpx_codec_control_(ctx, id, value);
}

vpx_codec_err_t mk_vpx_control_get_int(vpx_codec_ctx_t *ctx, int id, int *value) {
    return vpx_codec_control_(ctx, id, value);
}

#include "CMeetKitShim.h"
#include <math.h>
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

int mk_opus_decode_int16(OpusDecoder *dec, const unsigned char *data, int32_t len, int16_t *pcm,
                         int frame_size, int channels, int decode_fec, float *softclip_mem) {
    if (frame_size <= 0 || channels < 1 || channels > 2) return OPUS_BAD_ARG;
    // On the stack, as libopus's own opus_decode keeps its float frame (120 ms stereo at
    // most: 45 KiB).
    float decoded[frame_size * channels];
    int n = opus_decode_float(dec, data, len, decoded, frame_size, decode_fec);
    if (n <= 0) return n;
    int count = n * channels;
    int beyond = 0;
    for (int i = 0; i < count; i++) beyond |= (decoded[i] > 1.0f) | (decoded[i] < -1.0f);
    if (beyond || softclip_mem[0] != 0.0f || softclip_mem[1] != 0.0f)
        opus_pcm_soft_clip(decoded, n, channels, softclip_mem);
    for (int i = 0; i < count; i++) {
        float x = decoded[i] * 32768.0f;
        x = x > -32768.0f ? x : -32768.0f;
        x = x < 32767.0f ? x : 32767.0f;
        // rintf rounds to nearest even, as the SSE conversion libopus uses; unlike lrintf it
        // cannot set errno, so the loop vectorizes.
        pcm[i] = (int16_t)(int32_t)rintf(x);
    }
    return n;
}

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

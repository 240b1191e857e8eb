// CMeetKitShim — the few C entry points Swift cannot call directly.
//
// libopus and libvpx configure their codecs through variadic functions
// (`opus_encoder_ctl`, `vpx_codec_control_`) and initialise them through
// function-like macros (`vpx_codec_enc_init`). Swift imports neither, so each gets a
// fixed-signature wrapper here. One more thing is here because it runs once per decoded
// frame and C vectorizes it reliably: 16-bit Opus decoding without libopus's scalar
// soft-clipping pass when no sample needs it. Nothing else belongs in this target.
#ifndef CMEETKIT_SHIM_H
#define CMEETKIT_SHIM_H

#include <stdint.h>
#include <opus/opus.h>
#include <vpx/vpx_encoder.h>
#include <vpx/vpx_decoder.h>

/// `opus_encoder_ctl(enc, request, value)` for the `OPUS_SET_*` requests taking an opus_int32.
int mk_opus_encoder_set(OpusEncoder *enc, int request, int32_t value);
/// `opus_encoder_ctl(enc, request, &value)` for the `OPUS_GET_*` requests returning an opus_int32.
int mk_opus_encoder_get(OpusEncoder *enc, int request, int32_t *value);
/// `opus_encoder_ctl(enc, OPUS_RESET_STATE)`.
int mk_opus_encoder_reset(OpusEncoder *enc);
/// `opus_decoder_ctl(dec, request, value)` for the `OPUS_SET_*` requests taking an opus_int32.
int mk_opus_decoder_set(OpusDecoder *dec, int request, int32_t value);
/// `opus_decoder_ctl(dec, request, &value)` for the `OPUS_GET_*` requests returning an opus_int32.
int mk_opus_decoder_get(OpusDecoder *dec, int request, int32_t *value);
/// `opus_decoder_ctl(dec, OPUS_RESET_STATE)`.
int mk_opus_decoder_reset(OpusDecoder *dec);
/// What `opus_decode` returns, sample for sample, for `channels` (the decoder's own count):
/// decodes to float, soft-clips as libopus does (`opus_pcm_soft_clip`, its state in
/// `softclip_mem[2]`, zero at start and after a reset) but only when a sample lies beyond
/// full scale or the previous frame's clipping continues — otherwise soft clipping changes
/// nothing, and libopus's pass over every sample is skipped — then scales, saturates and
/// rounds to 16 bits as libopus does. Returns samples per channel, or an Opus error code.
int mk_opus_decode_int16(OpusDecoder *dec, const unsigned char *data, int32_t len, int16_t *pcm,
                         int frame_size, int channels, int decode_fec, float *softclip_mem);

/// `vpx_codec_enc_init(ctx, vpx_codec_vp8_cx(), cfg, flags)`.
vpx_codec_err_t mk_vpx_vp8_enc_init(vpx_codec_ctx_t *ctx, const vpx_codec_enc_cfg_t *cfg,
                                    vpx_codec_flags_t flags);
/// `vpx_codec_enc_config_default(vpx_codec_vp8_cx(), cfg, 0)`.
vpx_codec_err_t mk_vpx_vp8_enc_config_default(vpx_codec_enc_cfg_t *cfg);
/// `vpx_codec_dec_init(ctx, vpx_codec_vp8_dx(), cfg, flags)`.
vpx_codec_err_t mk_vpx_vp8_dec_init(vpx_codec_ctx_t *ctx, const vpx_codec_dec_cfg_t *cfg,
                                    vpx_codec_flags_t flags);
/// `vpx_codec_control_(ctx, id, value)` for controls taking an int.
vpx_codec_err_t mk_vpx_control_int(vpx_codec_ctx_t *ctx, int id, int value);
/// `vpx_codec_control_(ctx, id, &value)` for controls returning an int.
vpx_codec_err_t mk_vpx_control_get_int(vpx_codec_ctx_t *ctx, int id, int *value);

#endif

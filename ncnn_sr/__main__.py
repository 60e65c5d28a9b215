from .entry import ncnn_sr

ncnn_sr()

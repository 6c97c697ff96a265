"""Real microscope images: the paper's samples, preprocessing, reference annotations,
post-processing, evaluation (foreground accuracy, COCO AP) and particle statistics."""

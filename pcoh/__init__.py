"""pcoh: perception coherence.

Transfer a teacher network's representation to a student by making the student rank
dissimilarities between inputs the way the teacher does (see DESIGN §1 and the README).
"""
__version__ = "0.1.0"

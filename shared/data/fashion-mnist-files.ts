/**
 * The four original Fashion-MNIST files (Xiao, Rasul and Vollgraf, 2017): names, shapes and
 * SHA-256 checksums of their *decompressed* contents, computed once from the Debian copies in
 * /usr/share/datasets/fashion-mnist (identical to the files the dataset's authors publish).
 */
import type { IdxExpectation } from './idx-file.ts';

/** One dataset file: its base name (without `.gz`) and what it must contain. */
export interface FashionMnistFile extends IdxExpectation {
  /** Base name as published, e.g. `train-images-idx3-ubyte`; stored as `<name>.gz` or raw. */
  name: string;
}

/** Image height and width in pixels. */
export const FASHION_MNIST_IMAGE_SIZE = 28;
/** Number of classes; labels are 0 to 9. */
export const FASHION_MNIST_CLASS_COUNT = 10;
/** Images in the training split. */
export const FASHION_MNIST_TRAIN_COUNT = 60_000;
/** Images in the test split. */
export const FASHION_MNIST_TEST_COUNT = 10_000;

const SIDE = FASHION_MNIST_IMAGE_SIZE;
const MAX_LABEL = FASHION_MNIST_CLASS_COUNT - 1;

/** The four files, each with its expected shape and checksum. */
export const FASHION_MNIST_FILES = {
  trainImages: {
    name: 'train-images-idx3-ubyte',
    dims: [FASHION_MNIST_TRAIN_COUNT, SIDE, SIDE],
    sha256: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
  },
  trainLabels: {
    name: 'train-labels-idx1-ubyte',
    dims: [FASHION_MNIST_TRAIN_COUNT],
    sha256: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    maxValue: MAX_LABEL,
  },
  testImages: {
    name: 't10k-images-idx3-ubyte',
    dims: [FASHION_MNIST_TEST_COUNT, SIDE, SIDE],
    sha256: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
  },
  testLabels: {
    name: 't10k-labels-idx1-ubyte',
    dims: [FASHION_MNIST_TEST_COUNT],
    sha256: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
    maxValue: MAX_LABEL,
  },
} as const satisfies Record<string, FashionMnistFile>;

/** Key of one of the four files. */
export type FashionMnistFileKey = keyof typeof FASHION_MNIST_FILES;

/**
 * Public mirrors of the gzip'd files, tried in order; a file is fetched as
 * `<mirror><name>.gz`. The first is the dataset authors' own bucket.
 */
export const FASHION_MNIST_MIRRORS: readonly string[] = [
  'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
  'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/',
];

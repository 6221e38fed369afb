using CoeffTune.Data;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Data;

public class ImageDatasetTests
{
    private static ImageDataset Toy() =>
        // Three 2x2x2 images; value = image + position / 10.
        new(Enumerable.Range(0, 24).Select(i => i / 8 + i % 8 / 10f).ToArray(), [1, 0, 1], ["a", "b"], 2, 2, 2, "toy");

    [Fact]
    public void Make_batch_returns_bchw_floats_and_int64_labels_for_the_given_indices()
    {
        var data = Toy();

        using var batch = data.MakeBatch([2, 0]);

        Assert.Equal(new long[] { 2, 2, 2, 2 }, batch.Inputs.shape);
        Assert.Equal(ScalarType.Float32, batch.Inputs.dtype);
        Assert.Equal(ScalarType.Int64, batch.Labels!.dtype);
        Assert.Equal(new long[] { 1, 1 }, batch.Labels.data<long>().ToArray());
        Assert.Equal(2.7f, batch.Inputs[0, 1, 1, 1].item<float>(), 5);
        Assert.Equal(0.3f, batch.Inputs[1, 0, 1, 1].item<float>(), 5);
    }

    [Fact]
    public void Dataset_from_a_tensor_holds_the_same_values_in_nchw_order()
    {
        using var t = arange(24, dtype: ScalarType.Float32).reshape(3, 2, 2, 2) / 24f;

        var data = ImageDataset.FromTensor(t, [0, 1, 0], ["a", "b"]);

        Assert.Equal((3, 2, 2, 2), (data.Count, data.Channels, data.Height, data.Width));
        Assert.Equal(13 / 24f, data.Image(1)[5], 6);
    }

    [Fact]
    public void Subset_and_relabel_copy_the_chosen_images_and_map_labels()
    {
        var sub = Toy().Subset([2]).Relabel([1, 0], ["x", "y"]);

        Assert.Equal(1, sub.Count);
        Assert.Equal([0], sub.Labels);
        Assert.Equal(2.5f, sub.Image(0)[5], 5);
    }

    [Fact]
    public void Pixel_count_that_does_not_match_the_shape_is_rejected_with_both_numbers()
    {
        var e = Assert.Throws<ArgumentException>(() => new ImageDataset(new float[7], [0, 0], ["a"], 1, 2, 2, "bad"));
        Assert.Equal("bad: 7 floats given for 2 images of 1x2x2 (expected 8)", e.Message);
    }

    [Fact]
    public void Bilinear_resize_keeps_constants_and_interpolates_with_half_pixel_centres()
    {
        // 1x2 row [0, 1] upsampled to 1x4: PyTorch (align_corners=False) gives 0, 0.25, 0.75, 1.
        Assert.Equal([0f, 0.25f, 0.75f, 1f], ImageOps.ResizeBilinear([0f, 1f], 1, 1, 2, 1, 4));
        Assert.All(ImageOps.ResizeBilinear(Enumerable.Repeat(0.4f, 64).ToArray(), 1, 8, 8, 28, 28), v => Assert.Equal(0.4f, v, 6));
    }

    [Fact]
    public void Rotating_by_quarter_turns_is_counter_clockwise_and_four_turns_are_identity()
    {
        float[] img = [1, 2, 3, 4]; // [[1, 2], [3, 4]]
        Assert.Equal([2f, 4f, 1f, 3f], ImageOps.Rotate90(img, 1, 2, 1));
        Assert.Equal([4f, 3f, 2f, 1f], ImageOps.Rotate90(img, 1, 2, 2));
        Assert.Equal([3f, 1f, 4f, 2f], ImageOps.Rotate90(img, 1, 2, 3));
        Assert.Equal(img, ImageOps.Rotate90(img, 1, 2, 4));
    }
}

using CoeffTune.Data;
using SkiaSharp;

namespace CoeffTune.Tests.Data;

public class ImageReaderTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Idx_pair_reads_pixels_scaled_to_unit_range_and_labels(bool gzip)
    {
        using var dir = new TempDir();
        string ext = gzip ? ".gz" : "";
        var images = dir.File("train-images-idx3-ubyte" + ext);
        var labels = dir.File("train-labels-idx1-ubyte" + ext);
        // Three 2x3 images; pixel value = 10 * image + position.
        var px = Enumerable.Range(0, 3).SelectMany(i => Enumerable.Range(0, 6).Select(p => (byte)(10 * i + p))).ToArray();
        px[17] = 255;
        TempDir.WriteIdx(images, 0x803, [3, 2, 3], px, gzip);
        TempDir.WriteIdx(labels, 0x801, [3], [2, 0, 1], gzip);

        var data = IdxReader.Read(images, labels);

        Assert.Equal(3, data.Count);
        Assert.Equal((1, 2, 3), (data.Channels, data.Height, data.Width));
        Assert.Equal([2, 0, 1], data.Labels);
        Assert.Equal(["0", "1", "2"], data.Classes);
        Assert.Equal(12 / 255f, data.Image(1)[2], 6);
        Assert.Equal(1f, data.Image(2)[5]);
    }

    [Fact]
    public void Idx_labels_given_as_images_file_names_the_file_and_the_magic()
    {
        using var dir = new TempDir();
        var labels = dir.File("train-labels-idx1-ubyte.gz");
        TempDir.WriteIdx(labels, 0x801, [2], [0, 1], gzip: true);

        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(labels));

        Assert.Equal("train-labels-idx1-ubyte.gz: magic 0x00000801 is not an IDX image file (expected 0x00000803)", e.Message);
    }

    [Fact]
    public void Idx_truncated_images_file_reports_expected_and_actual_sizes()
    {
        using var dir = new TempDir();
        var images = dir.File("x-images-idx3-ubyte");
        TempDir.WriteIdx(images, 0x803, [2, 2, 2], new byte[7], gzip: false);

        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(images));

        Assert.Equal("x-images-idx3-ubyte: 2 images of 2x2 need 24 bytes, the file has 23", e.Message);
    }

    [Fact]
    public void Idx_images_and_labels_of_different_counts_are_rejected()
    {
        using var dir = new TempDir();
        var images = dir.File("a-images-idx3-ubyte");
        var labels = dir.File("a-labels-idx1-ubyte");
        TempDir.WriteIdx(images, 0x803, [2, 1, 1], [0, 0], gzip: false);
        TempDir.WriteIdx(labels, 0x801, [3], [0, 0, 0], gzip: false);

        var e = Assert.Throws<InvalidDataException>(() => IdxReader.Read(images, labels));

        Assert.Contains("a-images-idx3-ubyte has 2 images but a-labels-idx1-ubyte has 3 labels", e.Message);
    }


    [Fact]
    public void Image_folder_gives_classes_from_subfolders_and_resizes_and_converts()
    {
        using var dir = new TempDir();
        TempDir.WritePng(dir.File("red/a.png"), 10, 6, new SKColor(255, 0, 0));
        TempDir.WritePng(dir.File("red/b.PNG"), 3, 3, new SKColor(255, 0, 0));
        TempDir.WritePng(dir.File("blue/c.png"), 8, 8, new SKColor(0, 0, 255));
        dir.File("blue/notes.txt", "ignored");

        var rgb = ImageFolderReader.Read(dir.Path, 4, 5, 3);
        var grey = ImageFolderReader.Read(dir.Path, 4, 4, 1);

        Assert.Equal(["blue", "red"], rgb.Classes);
        Assert.Equal([0, 1, 1], rgb.Labels);
        Assert.Equal((3, 4, 5), (rgb.Channels, rgb.Height, rgb.Width));
        // Uniform colours survive resizing: blue image is (0, 0, 1) everywhere, channel-first.
        Assert.All(rgb.Image(0)[..20].ToArray(), v => Assert.Equal(0f, v, 3));
        Assert.All(rgb.Image(0)[40..].ToArray(), v => Assert.Equal(1f, v, 3));
        Assert.All(rgb.Image(1)[..20].ToArray(), v => Assert.Equal(1f, v, 3));
        Assert.Equal(0.299f, grey.Image(1)[0], 2);
        Assert.Equal(0.114f, grey.Image(0)[0], 2);
    }

    [Fact]
    public void Image_folder_with_an_undecodable_file_names_it()
    {
        using var dir = new TempDir();
        TempDir.WritePng(dir.File("cat/good.png"), 4, 4, SKColors.White);
        dir.File("cat/broken.png", "this is not a png");

        var e = Assert.Throws<InvalidDataException>(() => ImageFolderReader.Read(dir.Path, 4, 4, 1));

        Assert.StartsWith(Path.Combine("cat", "broken.png") + ":", e.Message);
    }

    [Fact]
    public void Digits_csv_reads_8x8_images_scaled_by_16_with_labels()
    {
        using var dir = new TempDir();
        var row1 = string.Join(",", Enumerable.Repeat("0", 63).Append("16").Append("7"));
        var row2 = string.Join(",", Enumerable.Repeat("8.0", 64).Append("3.0"));
        var path = dir.File("digits.csv", row1 + "\n" + row2 + "\n");

        var data = DigitsCsvReader.Read(path);

        Assert.Equal(2, data.Count);
        Assert.Equal((1, 8, 8), (data.Channels, data.Height, data.Width));
        Assert.Equal([7, 3], data.Labels);
        Assert.Equal(1f, data.Image(0)[63]);
        Assert.Equal(0f, data.Image(0)[0]);
        Assert.Equal(0.5f, data.Image(1)[10]);
    }

    [Fact]
    public void Digits_csv_with_a_short_row_names_file_and_line()
    {
        using var dir = new TempDir();
        var path = dir.File("digits.csv", string.Join(",", Enumerable.Repeat("1", 65)) + "\n1,2,3\n");

        var e = Assert.Throws<InvalidDataException>(() => DigitsCsvReader.Read(path));

        Assert.Equal("digits.csv: line 2 has 3 values, expected 65 (64 pixels and a label)", e.Message);
    }

    [Fact]
    public void Mnist_json_reads_each_digit_file_as_its_class()
    {
        using var dir = new TempDir();
        for (int d = 0; d < 10; d++)
        {
            int images = d == 3 ? 2 : 1;
            var values = Enumerable.Range(0, 784 * images).Select(i => i == 0 ? (d / 10.0).ToString(System.Globalization.CultureInfo.InvariantCulture) : "0");
            dir.File($"digits/{d}.json", "{\"data\":[" + string.Join(",", values) + "]}");
        }

        var data = MnistJsonReader.Read(Path.Combine(dir.Path, "digits"));

        Assert.Equal(11, data.Count);
        Assert.Equal([0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9], data.Labels);
        Assert.Equal(0.7f, data.Image(8)[0], 6);
        Assert.Equal((28, 28), (data.Height, data.Width));
    }

    [Fact]
    public void Mnist_json_with_a_partial_image_names_the_file()
    {
        using var dir = new TempDir();
        for (int d = 0; d < 10; d++) dir.File($"digits/{d}.json", "{\"data\":[" + string.Join(",", Enumerable.Repeat("0", d == 4 ? 785 : 784)) + "]}");

        var e = Assert.Throws<InvalidDataException>(() => MnistJsonReader.Read(Path.Combine(dir.Path, "digits")));

        Assert.Equal("4.json: \"data\" has 785 values, not a positive multiple of 784", e.Message);
    }
}

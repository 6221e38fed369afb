using CoeffTune.Data;

namespace CoeffTune.Tests.Data;

public class TaskCatalogTests
{
    [Fact]
    public void Csv_with_a_test_sibling_uses_it_and_aligns_its_classes_to_training()
    {
        using var dir = new TempDir();
        var train = dir.File("reviews-train.csv", "text,label\na,pos\nb,neg\nc,pos\n");
        dir.File("reviews-test.csv", "text,label\nd,pos\n");

        var task = TaskCatalog.Load(train);

        Assert.Equal(TaskKind.Text, task.Kind);
        Assert.Equal(["neg", "pos"], task.Classes);
        Assert.Equal((3, 1), (task.TrainPool.Count, task.Test.Count));
        // "pos" is class 0 in the test file alone but class 1 in training.
        Assert.Equal([1], task.Test.Labels);
    }

    [Fact]
    public void Jsonl_without_a_test_part_holds_out_a_stratified_fifth()
    {
        using var dir = new TempDir();
        var lines = Enumerable.Range(0, 50).Select(i => $"{{\"text\":\"t{i}\",\"label\":{(i < 30 ? 0 : 1)}}}");
        var path = dir.File("all.jsonl", string.Join("\n", lines));

        var task = TaskCatalog.Load(path);

        Assert.Equal((40, 10), (task.TrainPool.Count, task.Test.Count));
        Assert.Equal(6, task.Test.Labels.Count(l => l == 0));
        Assert.Empty(task.TextTrain.Texts.Intersect(task.TextTest.Texts));
    }

    [Fact]
    public void Folder_with_an_idx_pair_and_t10k_files_is_a_train_test_task()
    {
        using var dir = new TempDir();
        TempDir.WriteIdx(dir.File("train-images-idx3-ubyte.gz"), 0x803, [4, 2, 2], new byte[16], gzip: true);
        TempDir.WriteIdx(dir.File("train-labels-idx1-ubyte.gz"), 0x801, [4], [0, 1, 2, 1], gzip: true);
        TempDir.WriteIdx(dir.File("t10k-images-idx3-ubyte.gz"), 0x803, [2, 2, 2], new byte[8], gzip: true);
        TempDir.WriteIdx(dir.File("t10k-labels-idx1-ubyte.gz"), 0x801, [2], [0, 1], gzip: true);

        var task = TaskCatalog.Load(dir.Path);

        Assert.Equal(TaskKind.Image, task.Kind);
        Assert.Equal((4, 2, 3), (task.TrainPool.Count, task.Test.Count, task.Classes.Count));
        Assert.Equal((1, 2, 2), (task.Channels, task.Height, task.Width));
    }

    [Fact]
    public void Folder_with_train_and_test_image_folders_reads_both_at_the_asked_size()
    {
        using var dir = new TempDir();
        foreach (var (part, cls, n) in new[] { ("train", "cat", 2), ("train", "dog", 1), ("test", "cat", 1), ("test", "dog", 1) })
            for (int i = 0; i < n; i++)
            {
                using var bmp = new SkiaSharp.SKBitmap(5, 7);
                bmp.Erase(SkiaSharp.SKColors.Gray);
                using var png = SkiaSharp.SKImage.FromBitmap(bmp).Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(dir.File($"{part}/{cls}/{i}.png"), png.ToArray());
            }

        var task = TaskCatalog.Load(dir.Path, pathOptions: new PathTaskOptions(height: 12, width: 10, channels: 3));

        Assert.Equal(["cat", "dog"], task.Classes);
        Assert.Equal((3, 2), (task.TrainPool.Count, task.Test.Count));
        Assert.Equal((3, 12, 10), (task.Channels, task.Height, task.Width));
        Assert.Equal([0, 0, 1], task.TrainPool.Labels);
    }

    [Fact]
    public void Unknown_name_lists_the_known_tasks()
    {
        var e = Assert.Throws<ArgumentException>(() => TaskCatalog.Load("no-such-task-or-path"));
        Assert.Contains("fashion-mnist, mnist, digits, mnist-rotation, fashion-coarse, spam, brown", e.Message);
    }

    [Fact]
    public void Rotation_task_labels_are_the_quarter_turns_applied_and_balanced()
    {
        var px = Enumerable.Range(0, 8 * 4).Select(i => i % 4 == 0 ? 1f : 0f).ToArray(); // top-left pixel lit
        var data = new ImageDataset(px, new int[8], ["digit"], 1, 2, 2);

        var rotated = TaskCatalog.Rotated(data, seed: 0, "rot");

        Assert.Equal([2, 2, 2, 2], rotated.Labels.GroupBy(l => l).OrderBy(g => g.Key).Select(g => g.Count()));
        // Counter-clockwise turns move the top-left pixel to bottom-left, bottom-right, top-right.
        int[] litAt = [0, 2, 3, 1];
        for (int i = 0; i < 8; i++) Assert.Equal(1f, rotated.Image(i)[litAt[rotated.Labels[i]]]);
    }
}
